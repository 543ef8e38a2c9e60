package demo

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
)

// airflowAPI is the simulated Airflow of the demo: it answers the clearTaskInstances call of
// Airflow's stable REST API (v1 and v2 paths) as Airflow does and says what it cleared.
type airflowAPI struct {
	srv     *http.Server
	ln      net.Listener
	cleared func(dag, run string, tasks []string)
}

func startAirflow(cleared func(dag, run string, tasks []string)) (*airflowAPI, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	a := &airflowAPI{ln: ln, cleared: cleared}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/{version}/dags/{dag}/clearTaskInstances", a.clear)
	a.srv = &http.Server{Handler: mux}
	go func() { _ = a.srv.Serve(ln) }()
	return a, nil
}

func (a *airflowAPI) URL() string { return "http://" + a.ln.Addr().String() }

func (a *airflowAPI) Close() { _ = a.srv.Close() }

func (a *airflowAPI) clear(w http.ResponseWriter, r *http.Request) {
	var req struct {
		DryRun   bool   `json:"dry_run"`
		TaskIDs  []any  `json:"task_ids"`
		DagRunID string `json:"dag_run_id"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		http.Error(w, `{"title":"Bad Request","detail":"`+err.Error()+`"}`, http.StatusBadRequest)
		return
	}
	dag := r.PathValue("dag")
	var tasks []string
	type ti struct {
		DagID    string `json:"dag_id"`
		DagRunID string `json:"dag_run_id"`
		TaskID   string `json:"task_id"`
	}
	out := struct {
		TaskInstances []ti `json:"task_instances"`
	}{TaskInstances: []ti{}}
	for _, t := range req.TaskIDs {
		id := fmt.Sprint(t)
		if l, ok := t.([]any); ok && len(l) > 0 { // [task_id, map_index]
			id = fmt.Sprint(l[0])
		}
		tasks = append(tasks, id)
		out.TaskInstances = append(out.TaskInstances, ti{DagID: dag, DagRunID: req.DagRunID, TaskID: id})
	}
	if !req.DryRun && a.cleared != nil {
		a.cleared(dag, req.DagRunID, tasks)
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
}

// taskList joins task ids for a sentence.
func taskList(tasks []string) string { return strings.Join(tasks, ", ") }
