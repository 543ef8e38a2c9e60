package rules

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/podmedic/podmedic/config"
	"github.com/podmedic/podmedic/finding"
)

func TestLimitRatioDetector(t *testing.T) {
	runDetectorCases(t, LimitRatioPlugin(), nil, "testdata/pods/limitratio.json", []detectorCase{{
		name: "limit 4x the request", namespace: "airflow", pod: "airflow-webserver-6f7d8c9b5-4kx2p",
		want: []wantFinding{{container: "webserver", evidence: []string{
			"container webserver: memory limit 4Gi is 4x its request 1Gi (max 1.5): the scheduler places pods by their requests, so nodes full of these run out of memory; set the request to at least 2731Mi or the limit to at most 1536Mi",
			"owner ReplicaSet/airflow-webserver-6f7d8c9b5: one finding for all its pods (e.g. airflow-webserver-6f7d8c9b5-4kx2p)",
		}}},
	}, {
		name: "bare Airflow worker without a limit", namespace: "airflow", pod: "etl-daily-enrich-2p8s4k6m",
		want: []wantFinding{{container: "base", evidence: []string{
			"container base has no memory limit (request 3Gi): it may use all of its node's memory; set a limit of at most 4608Mi (1.5x the request)",
			"owner airflow/etl_daily/enrich: one finding for all its pods (e.g. etl-daily-enrich-2p8s4k6m)",
		}}},
	}, {
		name: "neither request nor limit", namespace: "airflow", pod: "toolbox",
		want: []wantFinding{{container: "shell", mentions: []string{"has neither a memory request nor a memory limit"}}},
	}, {
		name: "exactly the maximum ratio", namespace: "airflow", pod: "etl-daily-score-4h6j8k0l",
	}, {
		name: "succeeded pods are not advised", namespace: "airflow", pod: "etl-daily-extract-0q3m8z1v",
	}})
	runDetectorCases(t, LimitRatioPlugin(), &LimitRatioArgs{MaxLimitRequestRatio: 4}, "testdata/pods/limitratio.json", []detectorCase{{
		name: "4x is fine with a ratio of 4", namespace: "airflow", pod: "airflow-webserver-6f7d8c9b5-4kx2p",
	}})
	for _, bad := range []float64{0, 0.5, math.Inf(1), math.NaN()} {
		assert.Equal(t, []config.FieldError{{Field: "max_limit_request_ratio", Message: "must be a number of at least 1"}},
			(&LimitRatioArgs{MaxLimitRequestRatio: bad}).Validate(), bad)
	}
	assert.Equal(t, 1.5, DefaultLimitRatioArgs().MaxLimitRequestRatio)
}

// TestLimitRatioOnePerOwner: the pods of one owner give findings with one key, so the engine's
// dedup reports the owner once.
func TestLimitRatioOnePerOwner(t *testing.T) {
	d := loadFixture(t, "testdata/pods/limitratio.json")
	view := d.View()
	det := LimitRatioDetector{Args: *DefaultLimitRatioArgs()}
	key := func(ns, name string) string {
		got := det.Detect(Input{Pod: fixturePod(t, d, ns, name), View: view, Now: nightNow})
		require.Len(t, got, 1, name)
		assert.Empty(t, got[0].UID, "no pod UID in a per-owner finding")
		return got[0].Key()
	}
	web := key("airflow", "airflow-webserver-6f7d8c9b5-4kx2p")
	assert.Equal(t, web, key("airflow", "airflow-webserver-6f7d8c9b5-9tz7m"), "two replicas of one ReplicaSet")
	enrich := key("airflow", "etl-daily-enrich-2p8s4k6m")
	assert.Equal(t, enrich, key("airflow", "etl-daily-enrich-7w1c5x9q"), "two runs of one Airflow task")
	assert.NotEqual(t, web, enrich)
}

func TestLimitOwner(t *testing.T) {
	ctrl := true
	owned := func(kind, name string) []metav1.OwnerReference {
		return []metav1.OwnerReference{{Kind: kind, Name: name, Controller: &ctrl}}
	}
	tests := []struct {
		name string
		meta metav1.ObjectMeta
		want string
	}{
		{"replica set", metav1.ObjectMeta{Name: "web-1", OwnerReferences: owned("ReplicaSet", "web-6f7d8c9b5")}, "ReplicaSet/web-6f7d8c9b5"},
		{"spark operator driver", metav1.ObjectMeta{Name: "a-driver", Labels: map[string]string{LabelSparkRole: "driver", LabelSparkAppName: "a"},
			OwnerReferences: owned("SparkApplication", "a")}, "SparkApplication/a"},
		{"spark executor owned by its driver", metav1.ObjectMeta{Name: "a-exec-3", Labels: map[string]string{LabelSparkRole: "executor", LabelSparkAppName: "a"},
			OwnerReferences: owned("Pod", "a-driver")}, "spark/a/executor"},
		{"bare Airflow worker", metav1.ObjectMeta{Name: "w", Labels: map[string]string{LabelAirflowExecutor: "True"},
			Annotations: map[string]string{"dag_id": "d", "task_id": "t"}}, "airflow/d/t"},
		{"bare pod", metav1.ObjectMeta{Name: "toolbox"}, "Pod/toolbox"},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, limitOwner(&corev1.Pod{ObjectMeta: tt.meta}), tt.name)
	}
}

func TestLimitRatioKeepsAlongsideFailures(t *testing.T) {
	d := loadFixture(t, "testdata/pods/crashloop.json")
	got := allRulesEngine(t).EvaluatePod(fixturePod(t, d, "airflow", "airflow-dag-processor-7b9c6d5f4-qm2xv"), d.View(), nightNow)
	require.Len(t, got, 2, describeFindings(got))
	assert.Equal(t, finding.CrashLoop, got[0].Kind)
	assert.Equal(t, finding.LimitRatio, got[1].Kind)
}
