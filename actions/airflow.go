package actions

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/podmedic/podmedic/finding"
)

// AirflowCredentials authenticate to Airflow's REST API: a bearer token (Airflow 3, or an
// auth manager that issues tokens), else basic auth (Airflow 2's basic_auth backend). Their
// String and GoString never show the secrets, so they are safe in logs and errors.
type AirflowCredentials struct {
	Username string
	Password string
	Token    string
}

// String implements fmt.Stringer without the secrets.
func (c AirflowCredentials) String() string {
	switch {
	case c.Token != "":
		return "bearer token (redacted)"
	case c.Username != "":
		return "basic auth as " + c.Username + " (password redacted)"
	}
	return "no credentials"
}

// GoString implements fmt.GoStringer without the secrets.
func (c AirflowCredentials) GoString() string { return c.String() }

// AirflowCredentialsFromEnv reads AIRFLOW_USERNAME/AIRFLOW_PASSWORD or AIRFLOW_TOKEN, each
// also from the file named by its *_FILE variant (a mounted Secret; a trailing newline is
// dropped). Setting a variable and its *_FILE both is an error; so is a user without a
// password. No credentials at all is allowed (an Airflow without auth, or a proxy that adds
// it).
func AirflowCredentialsFromEnv(getenv func(string) string) (AirflowCredentials, error) {
	var c AirflowCredentials
	var errs []error
	read := func(name string) string {
		v, file := getenv(name), getenv(name+"_FILE")
		switch {
		case v != "" && file != "":
			errs = append(errs, fmt.Errorf("set %s or %s_FILE, not both", name, name))
			return ""
		case file != "":
			b, err := os.ReadFile(file)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s_FILE: %w", name, err))
				return ""
			}
			return strings.TrimRight(string(b), "\r\n")
		}
		return v
	}
	c.Username, c.Password, c.Token = read("AIRFLOW_USERNAME"), read("AIRFLOW_PASSWORD"), read("AIRFLOW_TOKEN")
	if c.Username != "" && c.Password == "" {
		errs = append(errs, errors.New("AIRFLOW_USERNAME is set but AIRFLOW_PASSWORD (or AIRFLOW_PASSWORD_FILE) is not"))
	}
	if c.Password != "" && c.Username == "" {
		errs = append(errs, errors.New("AIRFLOW_PASSWORD is set but AIRFLOW_USERNAME (or AIRFLOW_USERNAME_FILE) is not"))
	}
	return c, errors.Join(errs...)
}

// AirflowClient calls Airflow's stable REST API: /api/v1 (Airflow 2) or /api/v2 (Airflow 3).
type AirflowClient struct {
	base        string
	version     string
	http        *http.Client
	credentials AirflowCredentials
}

// NewAirflowClient returns a client of the API at baseURL (the webserver or API server, e.g.
// http://airflow-webserver.airflow:8080) in apiVersion v1 or v2; timeout bounds one call.
func NewAirflowClient(baseURL, apiVersion string, timeout time.Duration, creds AirflowCredentials) (*AirflowClient, error) {
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("airflow url is not an http(s) URL with a host")
	}
	if u.User != nil {
		// Credentials in the URL would be in every error (Slack, the audit trail, Events).
		return nil, errors.New("airflow url carries credentials; set AIRFLOW_USERNAME and AIRFLOW_PASSWORD, or AIRFLOW_TOKEN, instead")
	}
	if apiVersion == "" {
		apiVersion = "v1"
	}
	if apiVersion != "v1" && apiVersion != "v2" {
		return nil, fmt.Errorf("airflow api_version %q: want v1 or v2", apiVersion)
	}
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	return &AirflowClient{base: strings.TrimRight(baseURL, "/"), version: apiVersion,
		http: &http.Client{Timeout: timeout}, credentials: creds}, nil
}

// ClearRequest asks Airflow to clear task instances of one DAG run so the scheduler runs
// them again.
type ClearRequest struct {
	DagID      string
	DagRunID   string
	TaskID     string
	MapIndex   *int
	OnlyFailed bool
}

// ClearedTask is a task instance Airflow cleared.
type ClearedTask struct {
	DagID    string `json:"dag_id"`
	DagRunID string `json:"dag_run_id"`
	TaskID   string `json:"task_id"`
	MapIndex *int   `json:"map_index,omitempty"`
}

// clearBody is the body of clearTaskInstances, the same in v1 and v2. dry_run defaults to
// true in Airflow and must be sent false.
type clearBody struct {
	DryRun            bool   `json:"dry_run"`
	TaskIDs           []any  `json:"task_ids"`
	DagRunID          string `json:"dag_run_id"`
	OnlyFailed        bool   `json:"only_failed"`
	ResetDagRuns      bool   `json:"reset_dag_runs"`
	IncludeUpstream   bool   `json:"include_upstream"`
	IncludeDownstream bool   `json:"include_downstream"`
}

// ClearTaskInstances calls POST /api/{v1,v2}/dags/{dag_id}/clearTaskInstances and returns
// the task instances Airflow cleared (none when the task is no longer failed and OnlyFailed
// is set). The DAG run is reset too (reset_dag_runs), so a failed run goes back to running.
func (c *AirflowClient) ClearTaskInstances(ctx context.Context, r ClearRequest) ([]ClearedTask, error) {
	if r.DagID == "" || r.TaskID == "" || r.DagRunID == "" {
		return nil, fmt.Errorf("clear task: dag_id, task_id and dag_run_id are required (got %q, %q, %q)", r.DagID, r.TaskID, r.DagRunID)
	}
	var task any = r.TaskID
	if r.MapIndex != nil && *r.MapIndex >= 0 {
		task = []any{r.TaskID, *r.MapIndex}
	}
	body, err := json.Marshal(clearBody{TaskIDs: []any{task}, DagRunID: r.DagRunID, OnlyFailed: r.OnlyFailed, ResetDagRuns: true})
	if err != nil {
		return nil, err
	}
	endpoint := c.base + "/api/" + c.version + "/dags/" + url.PathEscape(r.DagID) + "/clearTaskInstances"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "podmedic")
	switch cr := c.credentials; {
	case cr.Token != "":
		req.Header.Set("Authorization", "Bearer "+cr.Token)
	case cr.Username != "":
		req.SetBasicAuth(cr.Username, cr.Password)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("airflow %s: %w", endpoint, redactURLError(err))
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode/100 != 2 {
		return nil, fmt.Errorf("airflow %s: %s%s", endpoint, resp.Status, problemDetail(data))
	}
	var out struct {
		TaskInstances []ClearedTask `json:"task_instances"`
	}
	if err := json.Unmarshal(data, &out); err != nil {
		return nil, fmt.Errorf("airflow %s: decode the answer: %w", endpoint, err)
	}
	return out.TaskInstances, nil
}

// problemDetail extracts the detail of an Airflow error body (RFC 7807 in Airflow 2, FastAPI's
// {"detail": ...} in Airflow 3), clipped.
func problemDetail(data []byte) string {
	var p struct {
		Title  string `json:"title"`
		Detail any    `json:"detail"`
	}
	if json.Unmarshal(data, &p) != nil {
		return ""
	}
	var s string
	switch d := p.Detail.(type) {
	case string:
		s = d
	case nil:
		s = p.Title
	default:
		b, _ := json.Marshal(d)
		s = string(b)
	}
	if s == "" {
		return ""
	}
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return ": " + s
}

// redactURLError drops user info a URL in err might carry.
func redactURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		if u, perr := url.Parse(ue.URL); perr == nil && u.User != nil {
			u.User = nil
			return &url.Error{Op: ue.Op, URL: u.String(), Err: ue.Err}
		}
	}
	return err
}

// AirflowClearTask clears the failed task instance of a finding through Airflow's REST API, so
// the scheduler runs it again. Params (filled by the rules engine): dag_id, task_id,
// dag_run_id, only_failed.
type AirflowClearTask struct {
	Client *AirflowClient
}

var (
	_ Executor  = AirflowClearTask{}
	_ Describer = AirflowClearTask{}
)

// Execute implements Executor.
func (a AirflowClearTask) Execute(ctx context.Context, r *Request) (string, error) {
	cr := clearRequest(r)
	cleared, err := a.Client.ClearTaskInstances(ctx, cr)
	if err != nil {
		return "", err
	}
	if len(cleared) == 0 {
		return fmt.Sprintf("Airflow cleared nothing: task %s.%s of run %s is not failed anymore", cr.DagID, cr.TaskID, cr.DagRunID), nil
	}
	return fmt.Sprintf("Airflow cleared %d task instance(s) of %s.%s in run %s; the scheduler runs it again",
		len(cleared), cr.DagID, cr.TaskID, cr.DagRunID), nil
}

// Describe implements Describer.
func (a AirflowClearTask) Describe(r *Request) string {
	cr := clearRequest(r)
	return fmt.Sprintf("clear Airflow task %s.%s of run %s (only_failed=%t)", cr.DagID, cr.TaskID, cr.DagRunID, cr.OnlyFailed)
}

func clearRequest(r *Request) ClearRequest {
	p := r.Action.Params
	only, err := strconv.ParseBool(p["only_failed"])
	if err != nil {
		only = true
	}
	cr := ClearRequest{DagID: p["dag_id"], TaskID: p["task_id"], DagRunID: p["dag_run_id"], OnlyFailed: only}
	if f := r.Finding; f != nil && f.Airflow != nil {
		cr.MapIndex = f.Airflow.MapIndex
	}
	return cr
}

// AirflowTarget is the target of airflow-clear-task: the task instance, named
// dag_id/dag_run_id/task_id, in the worker pod's namespace.
func AirflowTarget(f *finding.Finding, a finding.Action) finding.Target {
	return finding.Target{Kind: "AirflowTaskInstance", Namespace: f.Namespace,
		Name: a.Params["dag_id"] + "/" + a.Params["dag_run_id"] + "/" + a.Params["task_id"]}
}

// PlainHTTPOutsideCluster reports whether an Airflow URL sends credentials unencrypted to a
// host outside the cluster: http:// to a public IP address, or to a name that does not read
// as a Kubernetes service (service, service.namespace, or a name ending in .svc or
// .cluster.local; the cluster's DNS search path resolves the short forms).
func PlainHTTPOutsideCluster(baseURL string) bool {
	u, err := url.Parse(baseURL)
	if err != nil || u.Scheme != "http" {
		return false
	}
	host := u.Hostname()
	if ip := net.ParseIP(host); ip != nil {
		return !ip.IsLoopback() && !ip.IsPrivate()
	}
	return host != "localhost" && strings.Count(host, ".") >= 2 &&
		!strings.HasSuffix(host, ".svc") && !strings.HasSuffix(host, ".cluster.local")
}
