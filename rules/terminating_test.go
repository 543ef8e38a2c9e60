package rules

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/podmedic/podmedic/config"
)

func TestStuckTerminatingDetector(t *testing.T) {
	runDetectorCases(t, StuckTerminatingPlugin(), nil, "testdata/pods/terminating.json", []detectorCase{{
		name: "worker on an unreachable node", namespace: "airflow", pod: "etl-daily-export-1r8w3v6k",
		want: []wantFinding{{evidence: []string{
			"pod still present 25m after its grace period ended (deletionTimestamp 2026-11-20T02:05:00Z, grace period 600s), timeout 10m",
			"node ip-10-0-9-12.ec2.internal, phase Running",
			"containers still reported running: base (the kubelet on ip-10-0-9-12.ec2.internal has not confirmed that they stopped)",
		}, mentions: []string{"kubectl get pod -n airflow etl-daily-export-1r8w3v6k -o jsonpath='{.metadata.finalizers}'"}}},
	}, {
		// The deletion timestamp already includes the 600s grace period.
		name: "within the timeout after the grace period", namespace: "airflow", pod: "etl-daily-export-1r8w3v6k",
		now: mustTime("2026-11-20T02:12:00Z"),
	}, {
		name: "deleted a few minutes ago", namespace: "airflow", pod: "etl-daily-cleanup-8x2n5v0k",
	}})
	runDetectorCases(t, StuckTerminatingPlugin(), nil, "testdata/pods/taskfailed.json", []detectorCase{{
		name: "not deleted", namespace: "airflow", pod: "etl-daily-validate-b6m1r9xe",
	}})
	assert.Equal(t, []config.FieldError{{Field: "terminating_timeout", Message: "must be greater than 0"}}, (&StuckTerminatingArgs{}).Validate())
	assert.Equal(t, 10*time.Minute, DefaultStuckTerminatingArgs().TerminatingTimeout.Duration)
}
