package rules

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/podmedic/podmedic/finding"
)

// Bounds of the log tail added to a TaskFailed finding.
const (
	logTailLines = 20
	logTailBytes = 4 << 10
	logTimeout   = 5 * time.Second
)

// LogTailer adds the last lines of a failed container's log to the finding's evidence. The log
// API goes through the kubelet; when it is unreachable (node gone, log rotated, no RBAC) the
// finding is reported without them — absent logs are not an error.
type LogTailer struct {
	Client kubernetes.Interface
	// Source replaces the log API when set (the demo's simulated cluster has no kubelet).
	Source LogSource
}

// LogSource returns the raw tail of a container's log (at most tailLines lines and limitBytes
// bytes).
type LogSource func(ctx context.Context, namespace, pod, container string, tailLines, limitBytes int64) ([]byte, error)

// enrich adds the log tail, cleaned of secrets by r, to TaskFailed findings about a container.
func (l *LogTailer) enrich(ctx context.Context, f *finding.Finding, r *Redactor) {
	if l == nil || (l.Client == nil && l.Source == nil) || f.Kind != finding.TaskFailed || f.Pod == "" || f.Container == "" {
		return
	}
	lines, err := l.tail(ctx, f.Namespace, f.Pod, f.Container)
	if err != nil || len(lines) == 0 {
		return
	}
	if heap := heapOOM(f, lines); heap != "" {
		f.Evidence = append(f.Evidence, heap)
	}
	f.Evidence = append(f.Evidence, "last log lines of "+f.Container+":")
	for _, line := range r.RedactLines(lines) {
		f.Evidence = append(f.Evidence, "  | "+line)
	}
}

// heapOOM says what a JVM's java.lang.OutOfMemoryError in a Spark driver's or executor's log
// means: the heap (spec.<role>.memory) is too small — unlike a kernel OOM kill, where the
// process as a whole outgrew the pod's limit and the off-heap memoryOverhead is what to raise.
// "" when the log shows none.
func heapOOM(f *finding.Finding, lines []string) string {
	if f.Spark == nil || (f.Spark.Role != "driver" && f.Spark.Role != "executor") {
		return ""
	}
	for _, l := range lines {
		if strings.Contains(l, "java.lang.OutOfMemoryError") {
			where := "spark." + f.Spark.Role + ".memory"
			if f.Spark.AppName != "" && f.Owner.Kind == "SparkApplication" {
				where = "spec." + f.Spark.Role + ".memory of SparkApplication " + f.Owner.Name
			}
			return fmt.Sprintf("the %s's JVM ran out of heap (java.lang.OutOfMemoryError in its log): raise %s (the heap), not memoryOverhead", f.Spark.Role, where)
		}
	}
	return ""
}

// tail returns at most logTailLines lines and logTailBytes bytes from the end of the log.
func (l *LogTailer) tail(ctx context.Context, ns, pod, container string) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, logTimeout)
	defer cancel()
	tailLines, limit := int64(logTailLines), int64(logTailBytes)
	var (
		raw []byte
		err error
	)
	if l.Source != nil {
		raw, err = l.Source(ctx, ns, pod, container, tailLines, limit)
	} else {
		raw, err = l.Client.CoreV1().Pods(ns).GetLogs(pod, &corev1.PodLogOptions{
			Container: container, TailLines: &tailLines, LimitBytes: &limit,
		}).DoRaw(ctx)
	}
	if err != nil {
		return nil, err
	}
	return boundLines(raw, logTailLines, logTailBytes), nil
}

// boundLines keeps the last n lines of raw within max bytes in all (the API's LimitBytes
// counts from the start of the tail, so a long last line could still exceed it).
func boundLines(raw []byte, n, max int) []string {
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		if line := strings.TrimRight(sc.Text(), "\r"); line != "" {
			lines = append(lines, line)
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	total := 0
	for i := len(lines) - 1; i >= 0; i-- {
		total += len(lines[i])
		if total > max {
			lines = lines[i+1:]
			break
		}
	}
	return lines
}
