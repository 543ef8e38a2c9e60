package rules

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/podmedic/podmedic/config"
)

func TestUnschedulableDetector(t *testing.T) {
	runDetectorCases(t, UnschedulablePlugin(), nil, "testdata/pods/unschedulable.json", []detectorCase{{
		name: "driver whose claim is not provisioned", namespace: "spark-jobs", pod: "checkpoint-compactor-driver",
		want: []wantFinding{{evidence: []string{
			"pod unschedulable for 24m (since 2026-11-20T02:05:02Z), timeout 10m: 0/9 nodes are available: pod has unbound immediate PersistentVolumeClaims. preemption: 0/9 nodes are available: 9 Preemption is not helpful for scheduling.",
			"event NotTriggerScaleUp x24 (last 02:29:40Z) from cluster-autoscaler: pod didn't trigger scale-up: 3 pod has unbound immediate PersistentVolumeClaims",
			"volume checkpoints: PVC spark-checkpoints-pvc is Pending (ReadWriteMany, storage class efs-sc)",
		}, mentions: []string{"event FailedScheduling x12 (last 02:27:41Z) from default-scheduler"}}},
	}, {
		name: "the same driver 8 minutes in", namespace: "spark-jobs", pod: "checkpoint-compactor-driver",
		now: mustTime("2026-11-20T02:13:00Z"),
	}, {
		name: "unschedulable for 4 minutes", namespace: "airflow", pod: "ml-features-backfill-3z8q1c4v",
	}, {
		name: "scheduling gated", namespace: "airflow", pod: "ml-features-score-1a2b3c4d",
	}})
	runDetectorCases(t, UnschedulablePlugin(), &UnschedulableArgs{UnschedulableTimeout: config.Duration{Duration: 3 * time.Minute}}, "testdata/pods/unschedulable.json", []detectorCase{{
		name: "4 minutes with a 3m timeout", namespace: "airflow", pod: "ml-features-backfill-3z8q1c4v",
		want:   []wantFinding{{mentions: []string{"9 Insufficient memory", "event FailedScheduling x3 (last 02:29:01Z)"}}},
		absent: []string{"volume "},
	}})
	assert.Equal(t, []config.FieldError{{Field: "unschedulable_timeout", Message: "must be greater than 0"}}, (&UnschedulableArgs{}).Validate())
	assert.Equal(t, 10*time.Minute, DefaultUnschedulableArgs().UnschedulableTimeout.Duration)
}
