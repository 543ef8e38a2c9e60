// Package airflowenv is an Airflow-API-compatible HTTP server for tests: the endpoints podmedic
// calls of Airflow's REST API, validated the way each Airflow release validates them, so a
// request real Airflow refuses is refused here too.
//
//   - v1 models Airflow 2.10's stable REST API (airflow/api_connexion/openapi/v1.yaml, validated
//     by connexion with strict_validation and by the marshmallow schemas of
//     airflow/api_connexion/schemas: unknown body fields and unknown query parameters are
//     refused with 400 and an RFC 7807 problem). Authentication: Basic (the basic_auth
//     backend), or a bearer token a custom auth backend accepts (WithStaticToken).
//   - v2 models Airflow 3.1's public API (airflow/api_fastapi/core_api; request bodies are
//     pydantic StrictBaseModels: unknown fields and wrong types are refused with 422 and
//     {"detail": [...]}). Authentication: only a JWT as a bearer token, issued by
//     POST /auth/token for a username and password and valid for WithTokenTTL
//     ([api_auth] jwt_expiration_time); an expired or unknown token, or Basic auth, is 401.
//
// Served: POST /auth/token (v2), POST /api/{v}/dags/{dag_id}/clearTaskInstances,
// GET /api/{v}/dags/{dag_id}/dagRuns, GET /api/{v}/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}[/{map_index}].
// Every request is recorded (Calls). The server binds 127.0.0.1 only.
package airflowenv

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// API versions.
const (
	V1 = "v1" // Airflow 2.10
	V2 = "v2" // Airflow 3.1
)

// Task instance states (airflow.utils.state.TaskInstanceState).
const (
	StateFailed         = "failed"
	StateUpstreamFailed = "upstream_failed"
	StateUpForRetry     = "up_for_retry"
	StateRunning        = "running"
	StateSuccess        = "success"
	StateQueued         = "queued"
	StateNone           = "" // cleared: the scheduler schedules it again
)

// Defaults of Start.
const (
	DefaultUser     = "podmedic"
	DefaultPassword = "s3cr3t-airflow-pw"
)

// Call is one request the server answered.
type Call struct {
	Method string
	Path   string
	Query  string
	// Auth is "basic:<user>", "bearer:jwt", "bearer:static", "bearer:invalid", "basic:invalid"
	// or "none".
	Auth   string
	Body   map[string]any // the JSON body, when there was one
	Status int
	At     time.Time
}

// DagRun is a run of a DAG.
type DagRun struct {
	DagID       string
	RunID       string
	LogicalDate time.Time
	State       string
}

type tiKey struct {
	dag, run, task string
	mapIndex       int // -1 for an unmapped task
}

// Server is a running Airflow stand-in.
type Server struct {
	t        testing.TB
	version  string
	user     string
	password string
	static   string
	ttl      time.Duration
	secret   []byte
	ln       net.Listener
	srv      *http.Server

	mu      sync.Mutex
	runs    map[string][]*DagRun // by dag
	tis     map[tiKey]string     // state
	tries   map[tiKey]int
	calls   []Call
	issued  int
	failing []int // statuses of the next answers to API calls (not /auth/token)
}

// Option configures Start.
type Option func(*Server)

// WithVersion serves v1 (Airflow 2, the default) or v2 (Airflow 3).
func WithVersion(v string) Option { return func(s *Server) { s.version = v } }

// WithUser sets the one user (default DefaultUser / DefaultPassword).
func WithUser(user, password string) Option {
	return func(s *Server) { s.user, s.password = user, password }
}

// WithStaticToken also accepts this bearer token (an API token issued out of band).
func WithStaticToken(tok string) Option { return func(s *Server) { s.static = tok } }

// WithTokenTTL sets how long issued JWTs are valid (default 24h, Airflow's
// jwt_expiration_time default being 86400 s).
func WithTokenTTL(d time.Duration) Option { return func(s *Server) { s.ttl = d } }

// Start starts a server on 127.0.0.1 and stops it when the test ends.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	s := &Server{t: t, version: V1, user: DefaultUser, password: DefaultPassword, ttl: 24 * time.Hour,
		secret: []byte(fmt.Sprintf("airflowenv-%d", time.Now().UnixNano())),
		runs:   map[string][]*DagRun{}, tis: map[tiKey]string{}, tries: map[tiKey]int{}}
	for _, o := range opts {
		o(s)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("airflowenv: %v", err)
	}
	s.ln = ln
	mux := http.NewServeMux()
	mux.HandleFunc("POST /auth/token", s.token)
	mux.HandleFunc("POST /api/{version}/dags/{dag}/clearTaskInstances", s.api(s.clear))
	mux.HandleFunc("GET /api/{version}/dags/{dag}/dagRuns", s.api(s.dagRuns))
	mux.HandleFunc("GET /api/{version}/dags/{dag}/dagRuns/{run}/taskInstances/{task}", s.api(s.taskInstance))
	mux.HandleFunc("GET /api/{version}/dags/{dag}/dagRuns/{run}/taskInstances/{task}/{index}", s.api(s.taskInstance))
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = s.srv.Serve(ln) }()
	t.Cleanup(s.Close)
	return s
}

// URL is the server's base URL (what airflow.url names).
func (s *Server) URL() string { return "http://" + s.ln.Addr().String() }

// Close stops the server: Airflow is down from then on.
func (s *Server) Close() { _ = s.srv.Close() }

// Version is the API version served.
func (s *Server) Version() string { return s.version }

// AddRun adds a DAG run.
func (s *Server) AddRun(dag, run string, logical time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.runs[dag] = append(s.runs[dag], &DagRun{DagID: dag, RunID: run, LogicalDate: logical.UTC(), State: "failed"})
}

// SetTask sets the state of a task instance of a run (mapIndex -1 for an unmapped task); the
// run must exist.
func (s *Server) SetTask(dag, run, task string, mapIndex int, state string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := tiKey{dag, run, task, mapIndex}
	s.tis[k] = state
	s.tries[k] = max(s.tries[k], 1)
}

// TaskState is the state of a task instance ("" once cleared) and whether it exists.
func (s *Server) TaskState(dag, run, task string, mapIndex int) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.tis[tiKey{dag, run, task, mapIndex}]
	return st, ok
}

// RevokeTokens invalidates every JWT issued so far (an API server restarted with a new
// [api_auth] jwt_secret, as one without a configured secret does).
func (s *Server) RevokeTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.secret = []byte(fmt.Sprintf("airflowenv-%d", time.Now().UnixNano()))
}

// FailNext answers the next API calls with these statuses (e.g. 503) before serving again.
func (s *Server) FailNext(statuses ...int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failing = append(s.failing, statuses...)
}

// Calls returns the requests answered so far.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

// CallsTo returns the calls whose path ends with suffix (e.g. "/clearTaskInstances").
func (s *Server) CallsTo(suffix string) []Call {
	var out []Call
	for _, c := range s.Calls() {
		if strings.HasSuffix(c.Path, suffix) {
			out = append(out, c)
		}
	}
	return out
}

// TokensIssued counts the JWTs POST /auth/token issued.
func (s *Server) TokensIssued() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.issued
}

func (s *Server) key() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.secret
}

// exchange is what one handler sees and answers.
type exchange struct {
	w      http.ResponseWriter
	r      *http.Request
	call   Call
	server *Server
}

func (x *exchange) reply(status int, v any) {
	x.call.Status = status
	x.server.record(x.call)
	ct := "application/json"
	if status >= 400 && x.server.version == V1 {
		ct = "application/problem+json"
	}
	x.w.Header().Set("Content-Type", ct)
	x.w.WriteHeader(status)
	_ = json.NewEncoder(x.w).Encode(v)
}

// fail answers an error the way the version does: an RFC 7807 problem (v1) or FastAPI's
// {"detail": ...} (v2).
func (x *exchange) fail(status int, title, detail string) {
	if x.server.version == V1 {
		x.reply(status, map[string]any{"detail": detail, "status": status, "title": title,
			"type": "https://airflow.apache.org/docs/apache-airflow/2.10.5/stable-rest-api-ref.html#section/Errors/" + strings.ReplaceAll(title, " ", "")})
		return
	}
	x.reply(status, map[string]any{"detail": detail})
}

// invalid answers a request body or query that does not validate: 400 (v1) or 422 with
// pydantic's error list (v2).
func (x *exchange) invalid(loc, typ, msg string) {
	if x.server.version == V1 {
		x.fail(http.StatusBadRequest, "Bad Request", fmt.Sprintf("%s: %s", loc, msg))
		return
	}
	x.reply(http.StatusUnprocessableEntity, map[string]any{"detail": []map[string]any{{
		"type": typ, "loc": strings.Split(loc, "."), "msg": msg}}})
}

func (s *Server) record(c Call) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, c)
}

// token is POST /auth/token (Airflow 3's auth managers: {"username", "password"} -> 201
// {"access_token"}; a wrong password is 401).
func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	x := &exchange{w: w, r: r, server: s, call: Call{Method: r.Method, Path: r.URL.Path, Auth: "none", At: time.Now()}}
	if s.version != V2 {
		x.fail(http.StatusNotFound, "Not Found", "The requested URL was not found on the server.")
		return
	}
	var body struct {
		Username string `json:"username"`
		Password string `json:"password"`
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		x.invalid("body", "json_invalid", err.Error())
		return
	}
	x.call.Body = map[string]any{"username": body.Username, "password": "(redacted)"}
	if body.Username != s.user || body.Password != s.password {
		x.reply(http.StatusUnauthorized, map[string]any{"detail": "Invalid credentials"})
		return
	}
	now := time.Now()
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS512, jwt.MapClaims{
		"sub": body.Username, "iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(s.ttl).Unix(),
		"aud": "apache-airflow", "iss": "airflowenv", "jti": strconv.FormatInt(now.UnixNano(), 36),
	}).SignedString(s.key())
	if err != nil {
		x.fail(http.StatusInternalServerError, "Internal Server Error", err.Error())
		return
	}
	s.mu.Lock()
	s.issued++
	s.mu.Unlock()
	x.reply(http.StatusCreated, map[string]any{"access_token": tok})
}

// api wraps an API endpoint: the version in the path, authentication, injected failures.
func (s *Server) api(h func(x *exchange)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		x := &exchange{w: w, r: r, server: s, call: Call{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, At: time.Now()}}
		if r.PathValue("version") != s.version {
			x.fail(http.StatusNotFound, "Not Found", "The requested URL was not found on the server.")
			return
		}
		x.call.Auth = s.authenticate(r)
		if !strings.HasPrefix(x.call.Auth, "basic:") && !strings.HasPrefix(x.call.Auth, "bearer:") || strings.HasSuffix(x.call.Auth, ":invalid") {
			if s.version == V1 {
				x.fail(http.StatusUnauthorized, "Unauthorized", "")
			} else if x.call.Auth == "bearer:invalid" {
				x.reply(http.StatusUnauthorized, map[string]any{"detail": "Invalid JWT token"})
			} else {
				x.reply(http.StatusUnauthorized, map[string]any{"detail": "Not authenticated"})
			}
			return
		}
		s.mu.Lock()
		var status int
		if len(s.failing) > 0 {
			status, s.failing = s.failing[0], s.failing[1:]
		}
		s.mu.Unlock()
		if status != 0 {
			x.fail(status, http.StatusText(status), "injected failure")
			return
		}
		h(x)
	}
}

// authenticate names the request's credentials and whether this version accepts them.
func (s *Server) authenticate(r *http.Request) string {
	h := r.Header.Get("Authorization")
	switch {
	case strings.HasPrefix(h, "Basic "):
		user, pw, _ := r.BasicAuth()
		if s.version == V1 && user == s.user && pw == s.password {
			return "basic:" + user
		}
		if s.version == V2 {
			return "none" // Airflow 3 reads only bearer tokens: "Not authenticated"
		}
		return "basic:invalid"
	case strings.HasPrefix(h, "Bearer "):
		tok := strings.TrimPrefix(h, "Bearer ")
		if s.static != "" && tok == s.static {
			return "bearer:static"
		}
		if s.version == V2 {
			_, err := jwt.Parse(tok, func(*jwt.Token) (any, error) { return s.key(), nil },
				jwt.WithValidMethods([]string{"HS512"}), jwt.WithAudience("apache-airflow"), jwt.WithExpirationRequired())
			if err == nil {
				return "bearer:jwt"
			}
		}
		return "bearer:invalid"
	}
	return "none"
}

// Body fields of clearTaskInstances: Airflow 2.10's ClearTaskInstanceFormSchema
// (airflow/api_connexion/schemas/task_instance_schema.py) and Airflow 3.1's
// ClearTaskInstancesBody (airflow/api_fastapi/core_api/datamodels/task_instances.py).
var clearFields = map[string][]string{
	V1: {"dry_run", "task_ids", "start_date", "end_date", "only_failed", "only_running", "include_subdags",
		"include_parentdag", "reset_dag_runs", "dag_run_id", "include_upstream", "include_downstream", "include_future", "include_past"},
	V2: {"dry_run", "start_date", "end_date", "only_failed", "only_running", "reset_dag_runs", "task_ids", "dag_run_id",
		"include_upstream", "include_downstream", "include_future", "include_past", "run_on_latest_version", "prevent_running_task"},
}

// clear is POST /dags/{dag_id}/clearTaskInstances.
func (s *Server) clear(x *exchange) {
	if ct := x.r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		if s.version == V1 {
			x.fail(http.StatusUnsupportedMediaType, "Unsupported Media Type", fmt.Sprintf("Invalid Content-type (%s), expected JSON data", ct))
		} else {
			x.invalid("body", "model_attributes_type", "Input should be a valid dictionary or object to extract fields from")
		}
		return
	}
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(x.r.Body)
	dec := json.NewDecoder(&buf)
	dec.UseNumber()
	var body map[string]any
	if err := dec.Decode(&body); err != nil || body == nil {
		x.invalid("body", "json_invalid", "the body is not a JSON object")
		return
	}
	x.call.Body = body
	var keys []string
	for k := range body {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := body[k]
		if !slices.Contains(clearFields[s.version], k) {
			if s.version == V1 {
				x.invalid(k, "", "Unknown field.")
			} else {
				x.invalid("body."+k, "extra_forbidden", "Extra inputs are not permitted")
			}
			return
		}
		switch k {
		case "task_ids":
			if msg := s.checkTaskIDs(v); msg != "" {
				x.invalid("body.task_ids", "list_type", msg)
				return
			}
		case "dag_run_id":
			if _, ok := v.(string); !ok && v != nil {
				x.invalid("body.dag_run_id", "string_type", "Input should be a valid string")
				return
			}
		case "start_date", "end_date":
			str, ok := v.(string)
			if _, err := time.Parse(time.RFC3339, str); !ok || err != nil {
				x.invalid("body."+k, "datetime_from_date_parsing", "Input should be a valid datetime")
				return
			}
		default:
			if _, ok := v.(bool); !ok {
				x.invalid("body."+k, "bool_type", "Input should be a valid boolean")
				return
			}
		}
	}
	flag := func(k string, def bool) bool {
		if b, ok := body[k].(bool); ok {
			return b
		}
		return def
	}
	dryRun, onlyFailed, onlyRunning := flag("dry_run", true), flag("only_failed", true), flag("only_running", false)
	resetRuns := flag("reset_dag_runs", s.version == V2)
	runID, _ := body["dag_run_id"].(string)
	_, hasStart := body["start_date"]
	_, hasEnd := body["end_date"]
	switch {
	case onlyFailed && onlyRunning:
		x.invalid("body", "value_error", "only_failed and only_running both are set to True")
		return
	case runID != "" && (hasStart || hasEnd):
		x.invalid("body", "value_error", "Exactly one of dag_run_id or (start_date and end_date) must be provided")
		return
	}

	sel := selection{dag: x.r.PathValue("dag"), runID: runID, dryRun: dryRun, onlyFailed: onlyFailed,
		onlyRunning: onlyRunning, resetRuns: resetRuns}
	sel.taskIDs, sel.hasTaskIDs = body["task_ids"].([]any)
	if hasStart {
		sel.start, _ = time.Parse(time.RFC3339, body["start_date"].(string))
	}
	if hasEnd {
		sel.end, _ = time.Parse(time.RFC3339, body["end_date"].(string))
	}
	out, status, title, detail := s.clearLocked(sel)
	if status != http.StatusOK {
		x.fail(status, title, detail)
		return
	}
	resp := map[string]any{"task_instances": out}
	if s.version == V2 {
		resp["total_entries"] = len(out)
	}
	x.reply(http.StatusOK, resp)
}

// selection is what a clearTaskInstances body selects.
type selection struct {
	dag, runID                      string
	start, end                      time.Time
	taskIDs                         []any
	hasTaskIDs                      bool
	dryRun, onlyFailed, onlyRunning bool
	resetRuns                       bool
}

func (sel selection) wants(k tiKey) bool {
	if !sel.hasTaskIDs {
		return true
	}
	for _, id := range sel.taskIDs {
		switch v := id.(type) {
		case string:
			if v == k.task {
				return true // a task id alone selects every map index
			}
		case []any:
			n, _ := v[1].(json.Number).Int64()
			if v[0] == k.task && int(n) == k.mapIndex {
				return true
			}
		}
	}
	return false
}

// clearLocked clears what sel selects and returns the cleared task instances as the version
// lists them, or an error status.
func (s *Server) clearLocked(sel selection) (out []map[string]any, status int, title, detail string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	runs, ok := s.runs[sel.dag]
	if !ok {
		return nil, http.StatusNotFound, "DAG not found", fmt.Sprintf("Dag id %s not found", sel.dag)
	}
	var inRuns []*DagRun
	for _, run := range runs {
		switch {
		case sel.runID != "":
			if run.RunID == sel.runID {
				inRuns = append(inRuns, run)
			}
		default:
			if (sel.start.IsZero() || !run.LogicalDate.Before(sel.start)) && (sel.end.IsZero() || !run.LogicalDate.After(sel.end)) {
				inRuns = append(inRuns, run)
			}
		}
	}
	if sel.runID != "" && len(inRuns) == 0 {
		return nil, http.StatusNotFound, "DAGRun not found", fmt.Sprintf("Dag Run id %s not found in dag %s", sel.runID, sel.dag)
	}
	type ref struct {
		run *DagRun
		k   tiKey
	}
	var cleared []ref
	for _, run := range inRuns {
		for k, st := range s.tis {
			if k.dag != sel.dag || k.run != run.RunID || !sel.wants(k) {
				continue
			}
			if sel.onlyFailed && st != StateFailed && st != StateUpstreamFailed {
				continue
			}
			if sel.onlyRunning && st != StateRunning {
				continue
			}
			cleared = append(cleared, ref{run, k})
		}
	}
	sort.Slice(cleared, func(i, j int) bool {
		a, b := cleared[i].k, cleared[j].k
		if a.task != b.task {
			return a.task < b.task
		}
		return a.mapIndex < b.mapIndex
	})
	out = []map[string]any{}
	for _, c := range cleared {
		ti := map[string]any{"dag_id": sel.dag, "dag_run_id": c.run.RunID, "task_id": c.k.task}
		if s.version == V1 {
			ti["execution_date"] = c.run.LogicalDate.Format(time.RFC3339)
		} else {
			ti["map_index"] = c.k.mapIndex
			ti["state"] = nullable(s.tis[c.k])
			ti["logical_date"] = c.run.LogicalDate.Format(time.RFC3339)
		}
		out = append(out, ti)
		if !sel.dryRun {
			s.tis[c.k] = StateNone
			if sel.resetRuns {
				c.run.State = "queued"
			}
		}
	}
	return out, http.StatusOK, "", ""
}

// checkTaskIDs validates task_ids: non-empty strings only (v1: "Not a valid string."), or v2's
// list[str | tuple[str, int]].
func (s *Server) checkTaskIDs(v any) string {
	ids, ok := v.([]any)
	if !ok {
		if v == nil && s.version == V2 {
			return ""
		}
		return "Not a valid list."
	}
	if len(ids) == 0 {
		return "task_ids list should have at least 1 element."
	}
	for _, id := range ids {
		switch e := id.(type) {
		case string:
		case []any:
			if s.version == V1 {
				return "Not a valid string."
			}
			if len(e) != 2 {
				return "Tuple should have 2 items"
			}
			if _, ok := e[0].(string); !ok {
				return "Input should be a valid string"
			}
			n, ok := e[1].(json.Number)
			if _, err := n.Int64(); !ok || err != nil {
				return "Input should be a valid integer"
			}
		default:
			if s.version == V1 {
				return "Not a valid string."
			}
			return "Input should be a valid string"
		}
	}
	return ""
}

// Query parameters of GET dagRuns: v1's (connexion, strict_validation: others are refused)
// and v2's (FastAPI ignores unknown ones).
var dagRunsQuery = map[string][]string{
	V1: {"limit", "offset", "execution_date_gte", "execution_date_lte", "start_date_gte", "start_date_lte",
		"end_date_gte", "end_date_lte", "updated_at_gte", "updated_at_lte", "state", "order_by", "fields"},
	V2: {"limit", "offset", "run_after_gte", "run_after_lte", "logical_date_gte", "logical_date_lte", "start_date_gte",
		"start_date_lte", "end_date_gte", "end_date_lte", "updated_at_gte", "updated_at_lte", "run_type", "state", "order_by"},
}

// dagRuns is GET /dags/{dag_id}/dagRuns with the logical date filters.
func (s *Server) dagRuns(x *exchange) {
	q := x.r.URL.Query()
	var extra []string
	for k := range q {
		if !slices.Contains(dagRunsQuery[s.version], k) {
			extra = append(extra, k)
		}
	}
	if len(extra) > 0 && s.version == V1 {
		sort.Strings(extra)
		x.fail(http.StatusBadRequest, "Bad Request", fmt.Sprintf("Extra query parameter(s) %s not in spec", strings.Join(extra, ", ")))
		return
	}
	field := map[string]string{V1: "execution_date", V2: "logical_date"}[s.version]
	bound := func(k string) (time.Time, bool, bool) {
		v := q.Get(k)
		if v == "" {
			return time.Time{}, false, true
		}
		t, err := time.Parse(time.RFC3339, v)
		return t, true, err == nil
	}
	gte, hasGTE, ok1 := bound(field + "_gte")
	lte, hasLTE, ok2 := bound(field + "_lte")
	if !ok1 || !ok2 {
		x.invalid("query."+field, "datetime_from_date_parsing", "Input should be a valid datetime")
		return
	}
	dag := x.r.PathValue("dag")
	s.mu.Lock()
	runs, ok := s.runs[dag]
	var out []map[string]any
	for _, run := range runs {
		if (hasGTE && run.LogicalDate.Before(gte)) || (hasLTE && run.LogicalDate.After(lte)) {
			continue
		}
		r := map[string]any{"dag_id": dag, "dag_run_id": run.RunID, "logical_date": run.LogicalDate.Format(time.RFC3339Nano), "state": run.State}
		if s.version == V1 {
			r["execution_date"] = r["logical_date"]
		}
		out = append(out, r)
	}
	s.mu.Unlock()
	if !ok && s.version == V2 {
		x.fail(http.StatusNotFound, "Not Found", fmt.Sprintf("The Dag with ID: `%s` was not found", dag))
		return
	}
	if out == nil {
		out = []map[string]any{}
	}
	x.reply(http.StatusOK, map[string]any{"dag_runs": out, "total_entries": len(out)})
}

// taskInstance is GET .../taskInstances/{task_id}[/{map_index}].
func (s *Server) taskInstance(x *exchange) {
	k := tiKey{x.r.PathValue("dag"), x.r.PathValue("run"), x.r.PathValue("task"), -1}
	if v := x.r.PathValue("index"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			x.invalid("path.map_index", "int_parsing", "Input should be a valid integer")
			return
		}
		k.mapIndex = n
	}
	s.mu.Lock()
	st, ok := s.tis[k]
	mapped := false
	if !ok && k.mapIndex == -1 {
		for o := range s.tis {
			if o.dag == k.dag && o.run == k.run && o.task == k.task {
				mapped = true
			}
		}
	}
	try := s.tries[k]
	s.mu.Unlock()
	switch {
	case mapped:
		x.fail(http.StatusNotFound, "Task instance not found", "Task instance is mapped, add the map_index value to the URL")
		return
	case !ok:
		x.fail(http.StatusNotFound, "Task instance not found", fmt.Sprintf("The Task Instance with dag_id: `%s`, run_id: `%s`, task_id: `%s` and map_index: `%d` was not found",
			k.dag, k.run, k.task, k.mapIndex))
		return
	}
	x.reply(http.StatusOK, map[string]any{"dag_id": k.dag, "dag_run_id": k.run, "task_id": k.task, "map_index": k.mapIndex,
		"state": nullable(st), "try_number": try})
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}
