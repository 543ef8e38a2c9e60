package rules

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/podmedic/podmedic/config"
)

func TestPVCPendingDetector(t *testing.T) {
	runDetectorCases(t, PVCPendingPlugin(), nil, "testdata/pods/pvc.json", []detectorCase{{
		name: "provisioning fails", namespace: "spark-jobs", pvc: "spark-checkpoints-pvc",
		want: []wantFinding{{evidence: []string{
			"PVC spark-checkpoints-pvc is Pending for 25m (since 2026-11-20T02:05:00Z), timeout 10m",
			"storage class efs-sc, provisioner efs.csi.aws.com, ReadWriteMany, requests 100Gi",
		}, mentions: []string{
			`event ProvisioningFailed x9 (last 02:28:33Z) from efs.csi.aws.com_efs-csi-controller-6b8f9c7d5-kq2zt_`,
			"AccessDeniedException",
			"still waiting for the external provisioner to create the volume: event ExternalProvisioning x101 (last 02:29:55Z)",
		}}},
	}, {
		name: "the same claim 8 minutes after its creation", namespace: "spark-jobs", pvc: "spark-checkpoints-pvc",
		now: mustTime("2026-11-20T02:13:00Z"),
	}, {
		name: "WaitForFirstConsumer without a consumer is not a finding", namespace: "spark-jobs", pvc: "spark-scratch-pvc",
	}, {
		name: "WaitForFirstConsumer, consumer scheduled, provisioning fails", namespace: "spark-jobs", pvc: "spark-local-pvc",
		want: []wantFinding{{evidence: []string{
			"its first consumer was scheduled to node ip-10-0-6-31.ec2.internal: the volume should have been provisioned there",
		}, mentions: []string{"invalid size: 16Ti exceeds the maximum", "waited for its first consumer"}}},
	}, {
		name: "pending for 4 minutes", namespace: "spark-jobs", pvc: "spark-shuffle-pvc",
	}, {
		name: "bound", namespace: "spark-jobs", pvc: "spark-history-server-pvc",
	}})
	assert.Equal(t, []config.FieldError{{Field: "pvc_pending_timeout", Message: "must be greater than 0"}}, (&PVCPendingArgs{}).Validate())
	assert.Equal(t, 10*time.Minute, DefaultPVCPendingArgs().PVCPendingTimeout.Duration)
}

func TestPVCPendingIgnoresPods(t *testing.T) {
	d := loadFixture(t, "testdata/pods/initstuck.json")
	pod := fixturePod(t, d, "spark-jobs", "nightly-aggregation-driver")
	assert.Empty(t, PVCPendingDetector{Args: *DefaultPVCPendingArgs()}.Detect(Input{Pod: pod, View: d.View(), Now: nightNow}))
}
