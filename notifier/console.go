package notifier

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"

	"github.com/podmedic/podmedic/finding"
)

// Console writes findings to a terminal or log stream, one block (text) or one line (json)
// per finding. It is safe for concurrent use.
type Console struct {
	mu     sync.Mutex
	w      io.Writer
	format string
}

var _ Notifier = (*Console)(nil)

// Console formats.
const (
	FormatText = "text"
	FormatJSON = "json"
)

// NewConsole returns a console notifier writing in format text or json.
func NewConsole(w io.Writer, format string) (*Console, error) {
	if format != FormatText && format != FormatJSON {
		return nil, fmt.Errorf("unknown output format %q (want text or json)", format)
	}
	return &Console{w: w, format: format}, nil
}

// Notify implements Notifier.
func (c *Console) Notify(_ context.Context, f *finding.Finding) error {
	var b []byte
	if c.format == FormatJSON {
		var err error
		if b, err = json.Marshal(f); err != nil {
			return err
		}
		b = append(b, '\n')
	} else {
		b = []byte(RenderText(f))
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	_, err := c.w.Write(b)
	return err
}

// RenderText renders a finding as a short readable block:
//
//	WARNING  OOMKilled  airflow/etl-load-7f9c/base  (rule oom)
//	  airflow   dag etl_daily, task load, run scheduled__2026-11-20T00:00:00+00:00, try 1
//	  evidence  container base terminated: OOMKilled (exit 137) at 2026-11-20T02:13:09Z
//	            memory limit 2Gi
//	  action    propose-memory-limit (approve): container=base limit=3Gi request=2Gi
func RenderText(f *finding.Finding) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-8s %s  %s  (rule %s)\n", strings.ToUpper(string(f.Severity)), f.Kind, f.Target(), f.Rule)
	if f.Owner.Kind != "" {
		fmt.Fprintf(&b, "  owner     %s/%s\n", f.Owner.Kind, f.Owner.Name)
	}
	if a := f.Airflow; a != nil {
		fmt.Fprintf(&b, "  airflow   dag %s, task %s, run %s, try %d", a.DagID, a.TaskID, a.RunID, a.TryNumber)
		if a.MapIndex != nil {
			fmt.Fprintf(&b, ", map index %d", *a.MapIndex)
		}
		b.WriteByte('\n')
	}
	if s := f.Spark; s != nil {
		fmt.Fprintf(&b, "  spark     app %s (%s), role %s\n", s.AppName, s.AppID, s.Role)
	}
	for i, e := range f.Evidence {
		label := ""
		if i == 0 {
			label = "evidence"
		}
		fmt.Fprintf(&b, "  %-9s %s\n", label, e)
	}
	if a := f.Action; a != nil {
		fmt.Fprintf(&b, "  action    %s (%s)%s\n", a.Type, a.Mode, params(a.Params))
	}
	return b.String()
}

func params(p map[string]string) string {
	if len(p) == 0 {
		return ""
	}
	keys := make([]string, 0, len(p))
	for k := range p {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + p[k]
	}
	return ": " + strings.Join(parts, " ")
}
