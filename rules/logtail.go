package rules

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/podmedic/podmedic/finding"
	"github.com/podmedic/podmedic/spark"
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

// enrich reads the log of a failed task's container once, for what needs it: its last lines,
// cleaned of secrets, in the evidence (evidence.log_tails); what a Spark JVM's
// java.lang.OutOfMemoryError in it means; and the memory proposal of a rule that proposes
// memory for failed tasks, which waits for the log (planHeap).
func (l *LogTailer) enrich(ctx context.Context, f *finding.Finding, e *Engine, view View) {
	if f.Kind != finding.TaskFailed || f.Pod == "" || f.Container == "" {
		return
	}
	tails, heap := e.cfg.Evidence.Tails(), e.heapRule(f)
	if !tails && heap == nil {
		return
	}
	var (
		lines []string
		err   = errors.New("no log API")
	)
	if l != nil && (l.Client != nil || l.Source != nil) {
		lines, err = l.tail(ctx, f.Namespace, f.Pod, f.Container)
	}
	role := heapRole(f, lines)
	if role != "" {
		f.Evidence = append(f.Evidence, heapOOM(f, role))
	}
	if heap != nil {
		if err != nil {
			f.Evidence = append(f.Evidence, "no memory proposed: the log of "+f.Container+" could not be read ("+err.Error()+"), and only it tells a heap that ran out")
		} else {
			e.planHeap(f, heap, role, view)
		}
	}
	if !tails || len(lines) == 0 {
		return
	}
	f.Evidence = append(f.Evidence, "last log lines of "+f.Container+":")
	for _, line := range e.redactor.RedactLines(lines) {
		f.Evidence = append(f.Evidence, "  | "+line)
	}
}

// executorHeap is how a Spark driver's log tells an executor's java.lang.OutOfMemoryError: a
// lost task names its executor, "Lost task 0.0 in stage 1.0 (TID 4) (10.0.3.7 executor 2):
// java.lang.OutOfMemoryError: Java heap space" (TaskSetManager.handleFailedTask; before Spark
// 3.1 "(TID 4, 10.0.3.7, executor 2): ..."), also inside "Job aborted due to stage failure".
var executorHeap = regexp.MustCompile(`executor [^\s)]+\): .*java\.lang\.OutOfMemoryError`)

// heapRole says whose JVM a Spark driver's or executor's log shows out of heap: "executor" when
// the last java.lang.OutOfMemoryError is an executor's lost task, else the pod's own role; ""
// when the log shows none. A "Caused by:" line restates the exception above it.
func heapRole(f *finding.Finding, lines []string) string {
	if f.Spark == nil || (f.Spark.Role != "driver" && f.Spark.Role != "executor") {
		return ""
	}
	role := ""
	for _, l := range lines {
		switch {
		case !strings.Contains(l, "java.lang.OutOfMemoryError"):
		case executorHeap.MatchString(l):
			role = "executor"
		case role != "" && strings.HasPrefix(strings.TrimSpace(l), "Caused by:"):
		default:
			role = f.Spark.Role
		}
	}
	return role
}

// heapOOM says what a JVM's java.lang.OutOfMemoryError means: the heap (spec.<role>.memory) is
// too small — unlike a kernel OOM kill, where the process as a whole outgrew the pod's limit
// and the off-heap memoryOverhead is what to raise.
func heapOOM(f *finding.Finding, role string) string {
	where := "spark." + role + ".memory"
	if f.Spark.AppName != "" && f.Owner.Kind == spark.KindApplication {
		where = "spec." + role + ".memory of SparkApplication " + f.Owner.Name
	}
	whose := "the " + role + "'s JVM"
	if role != f.Spark.Role {
		whose = "an " + role + "'s JVM" // an executor's, seen in the driver's log
	}
	return fmt.Sprintf("%s ran out of heap (java.lang.OutOfMemoryError in the log): raise %s (the heap), not memoryOverhead", whose, where)
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
