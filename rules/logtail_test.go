package rules

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/podmedic/podmedic/config"
	"github.com/podmedic/podmedic/finding"
)

func TestBoundLines(t *testing.T) {
	var b strings.Builder
	for i := 1; i <= 50; i++ {
		fmt.Fprintf(&b, "line %d\r\n", i)
	}
	got := boundLines([]byte(b.String()), 20, 4096)
	require.Len(t, got, 20)
	require.Equal(t, "line 31", got[0])
	require.Equal(t, "line 50", got[19])

	long := strings.Repeat("x", 3000)
	got = boundLines([]byte("a\n"+long+"\n"+long+"\nlast\n"), 20, 4096)
	require.Equal(t, []string{long, "last"}, got, "at most 4 KiB in all")
}

func TestLogTailerEnrichesTaskFailedOnly(t *testing.T) {
	l := &LogTailer{Client: fake.NewClientset()} // the fake log API answers "fake logs"
	e := &Engine{cfg: &config.Config{}}
	f := &finding.Finding{Kind: finding.TaskFailed, Namespace: "airflow", Pod: "p", Container: "base", Evidence: []string{"exit 1"}}
	l.enrich(context.Background(), f, e, nil)
	require.Equal(t, []string{"exit 1", "last log lines of base:", "  | fake logs"}, f.Evidence)

	o := &finding.Finding{Kind: finding.OOMKilled, Namespace: "airflow", Pod: "p", Container: "base"}
	l.enrich(context.Background(), o, e, nil)
	require.Empty(t, o.Evidence)
}

// TestHeapOOMInTheLog: a Spark driver whose log shows java.lang.OutOfMemoryError ran out of
// heap: the evidence says to raise its memory, not its overhead; other pods' logs say nothing.
func TestHeapOOMInTheLog(t *testing.T) {
	log := "26/11/20 02:11:38 ERROR SparkContext: Error initializing SparkContext.\nException in thread \"main\" java.lang.OutOfMemoryError: Java heap space\n\tat java.base/java.util.Arrays.copyOf(Arrays.java:3537)\n"
	l := &LogTailer{Source: func(context.Context, string, string, string, int64, int64) ([]byte, error) { return []byte(log), nil }}
	e := &Engine{cfg: &config.Config{}}
	f := &finding.Finding{Kind: finding.TaskFailed, Namespace: "spark-jobs", Pod: "sales-driver", Container: "spark-kubernetes-driver",
		Owner: finding.Owner{Kind: "SparkApplication", Name: "sales-daily-aggregate-20261120"},
		Spark: &finding.SparkApp{AppName: "sales-daily-aggregate-20261120", Role: "driver"}}
	l.enrich(context.Background(), f, e, nil)
	require.Equal(t, "the driver's JVM ran out of heap (java.lang.OutOfMemoryError in the log): raise spec.driver.memory of SparkApplication sales-daily-aggregate-20261120 (the heap), not memoryOverhead", f.Evidence[0])

	worker := &finding.Finding{Kind: finding.TaskFailed, Namespace: "airflow", Pod: "p", Container: "base"}
	l.enrich(context.Background(), worker, e, nil)
	require.Equal(t, "last log lines of base:", worker.Evidence[0], "not a Spark pod: the log only")
}

// TestHeapRole: whose heap a Spark driver's log shows out of memory — its own, or an
// executor's lost task (Spark 3.1+ and older formats), a "Caused by:" restating the line above.
func TestHeapRole(t *testing.T) {
	driver := &finding.Finding{Spark: &finding.SparkApp{Role: "driver"}}
	for _, c := range []struct {
		log, want string
	}{
		{"Exception in thread \"main\" java.lang.OutOfMemoryError: Java heap space", "driver"},
		{"26/11/20 02:11:38 WARN TaskSetManager: Lost task 3.0 in stage 2.0 (TID 41) (10.0.3.7 executor 2): java.lang.OutOfMemoryError: Java heap space", "executor"},
		{"WARN TaskSetManager: Lost task 0.0 in stage 0.0 (TID 0, 10.0.3.7, executor 1): java.lang.OutOfMemoryError: GC overhead limit exceeded", "executor"},
		{"Exception in thread \"main\" org.apache.spark.SparkException: Job aborted due to stage failure: Task 3 in stage 2.0 failed 4 times, most recent failure: Lost task 3.3 in stage 2.0 (TID 47) (10.0.3.9 executor 4): java.lang.OutOfMemoryError: Java heap space\nCaused by: java.lang.OutOfMemoryError: Java heap space", "executor"},
		{"ERROR Executor: Exception in task 0.0\njava.lang.NullPointerException", ""},
	} {
		assert.Equal(t, c.want, heapRole(driver, strings.Split(c.log, "\n")), c.log)
	}
	assert.Empty(t, heapRole(&finding.Finding{}, []string{"java.lang.OutOfMemoryError"}), "not a Spark pod")
}
