package notifier

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/podmedic/podmedic/finding"
)

// Console writes notices to a terminal or log stream, one block (text) or one line (json) per
// notice. In json a finding notice is the finding itself (the replay line); other notices are
// the Notice object. It is safe for concurrent use.
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
func (c *Console) Notify(_ context.Context, n *finding.Notice) error {
	var b []byte
	if c.format == FormatJSON {
		var v any = n
		if n.Type == finding.NoticeFinding && n.Finding != nil && n.Proposal == nil && n.Outcome == nil {
			v = n.Finding
		}
		var err error
		if b, err = json.Marshal(v); err != nil {
			return err
		}
		b = append(b, '\n')
	} else {
		b = []byte(RenderNotice(n))
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	_, err := c.w.Write(b)
	return err
}

// RenderNotice renders any notice as text: a finding block (with its proposal or outcome), one
// line for a decision or a refusal, or a report's title and indented text.
func RenderNotice(n *finding.Notice) string {
	switch n.Type {
	case finding.NoticeDecision:
		return RenderDecision(n.Proposal) + "\n"
	case finding.NoticeRefusal:
		o := n.Outcome
		if o == nil {
			o = &finding.Outcome{}
		}
		return fmt.Sprintf("REFUSED  %d action(s): %s\n", max(n.Count, 1), o.Message)
	case finding.NoticeFollowUp:
		id := ""
		if n.Proposal != nil {
			id = n.Proposal.ID
		}
		return fmt.Sprintf("FOLLOWUP %s: %s\n", id, n.Text)
	case finding.NoticeReport:
		var b strings.Builder
		fmt.Fprintf(&b, "REPORT   %s\n", n.Title)
		for _, line := range strings.Split(strings.TrimRight(n.Text, "\n"), "\n") {
			if line == "" {
				b.WriteString("\n")
				continue
			}
			fmt.Fprintf(&b, "  %s\n", line)
		}
		return b.String()
	}
	var b strings.Builder
	if n.Finding != nil {
		b.WriteString(RenderText(n.Finding))
	}
	if p := n.Proposal; p != nil {
		fmt.Fprintf(&b, "  proposal  %s: %s, waiting for approval until %s\n", p.ID, p.State, p.ExpiresAt.UTC().Format("15:04Z"))
		if p.Advice != "" {
			b.WriteString("  advice    the change to make (podmedic records the decision, it does not patch this):\n")
			for _, line := range strings.Split(strings.TrimRight(p.Advice, "\n"), "\n") {
				b.WriteString("            " + line + "\n")
			}
		}
	}
	if o := n.Outcome; o != nil {
		fmt.Fprintf(&b, "  outcome   %s: %s\n", o.Result, o.Message)
	}
	return b.String()
}

// RenderDecision is one line about a proposal's state: "Approved by U123 at 03:12 -> pod deleted".
func RenderDecision(p *finding.Proposal) string {
	if p == nil {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "proposal %s (%s %s): %s", p.ID, p.Action.Type, p.Finding.Name(), p.State)
	if p.DecidedBy != "" {
		fmt.Fprintf(&b, " by %s at %s", p.DecidedBy, p.DecidedAt.UTC().Format("15:04Z"))
	}
	if o := p.Outcome; o != nil {
		fmt.Fprintf(&b, " -> %s", o.Message)
	}
	return b.String()
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
	fmt.Fprintf(&b, "%-8s %s  %s  (rule %s)\n", strings.ToUpper(string(f.Severity)), f.Kind, f.Name(), f.Rule)
	if f.Owner.Kind != "" {
		fmt.Fprintf(&b, "  owner     %s/%s\n", f.Owner.Kind, f.Owner.Name)
	}
	if a := f.Airflow; a != nil {
		fmt.Fprintf(&b, "  airflow   dag %s, task %s, run %s, try %d", a.DagID, a.TaskID, a.Run(), a.TryNumber)
		if a.MapIndex != nil {
			fmt.Fprintf(&b, ", map index %d", *a.MapIndex)
		}
		b.WriteByte('\n')
	}
	if s := f.Spark; s != nil && s.Schedule {
		fmt.Fprintf(&b, "  spark     ScheduledSparkApplication %s, %s\n", s.Application, s.State)
	} else if s != nil && s.Application != "" {
		fmt.Fprintf(&b, "  spark     application %s, %s after %d attempt(s)\n", s.Application, s.State, s.Attempts)
	} else if s != nil {
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
	return ": " + FormatParams(p)
}

// FormatParams writes an action's parameters as key=value pairs sorted by key and separated by
// spaces.
func FormatParams(p map[string]string) string {
	parts := make([]string, 0, len(p))
	for _, k := range slices.Sorted(maps.Keys(p)) {
		parts = append(parts, k+"="+p[k])
	}
	return strings.Join(parts, " ")
}
