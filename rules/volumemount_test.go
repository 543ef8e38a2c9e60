package rules

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/podmedic/podmedic/config"
)

func TestVolumeMountFailedDetector(t *testing.T) {
	runDetectorCases(t, VolumeMountFailedPlugin(), nil, "testdata/pods/volumemount.json", []detectorCase{{
		name: "secret not found", namespace: "airflow", pod: "crm-export-upload-6d1s8k3n",
		want: []wantFinding{{evidence: []string{
			"4 volume attach/mount failures in the last 10m (FailedMount x4), minimum 3; pod Pending on node ip-10-0-4-203.ec2.internal",
			`event FailedMount x4 (last 02:29:09Z): MountVolume.SetUp failed for volume "airflow-connections" : secret "airflow-connections" not found`,
		}}},
	}, {
		name: "multi-attach of a ReadWriteOnce volume", namespace: "spark-jobs", pod: "hourly-sessionize-driver",
		want: []wantFinding{{evidence: []string{
			"4 volume attach/mount failures in the last 10m (FailedAttachVolume x1, FailedMount x3), minimum 3; pod Pending on node ip-10-0-6-31.ec2.internal",
			"volume history: PVC spark-history-server-pvc is Bound (ReadWriteOnce, volume pvc-3f2a9c1e-8b7d-4e6f-a1b2-c3d4e5f60718, storage class gp3)",
		}, mentions: []string{"Multi-Attach error", "Volume is already used by pod(s) spark-history-server-6d9f7b8c5-x2x7q"}}},
	}, {
		name: "failures an hour ago, running since", namespace: "airflow", pod: "finance-close-ledger-8p2c6w0z",
	}, {
		name: "the same failures when they were recent", namespace: "airflow", pod: "finance-close-ledger-8p2c6w0z",
		now:  mustTime("2026-11-20T01:14:00Z"),
		want: []wantFinding{{mentions: []string{"failures in the last 10m (FailedMount x", "pod Running"}}},
	}, {
		name: "succeeded pods are left alone", namespace: "airflow", pod: "crm-export-extract-3j5n1q8r",
	}, {
		name: "another pod's failures", namespace: "airflow", pod: "crm-export-upload-9k4t2m6x",
	}})
}

func TestVolumeMountFailedThresholds(t *testing.T) {
	runDetectorCases(t, VolumeMountFailedPlugin(), nil, "testdata/pods/initstuck.json", []detectorCase{{
		name: "two failures are below the default minimum", namespace: "spark-jobs", pod: "adhoc-backfill-driver",
	}})
	runDetectorCases(t, VolumeMountFailedPlugin(), &VolumeMountFailedArgs{MinFailures: 2, Window: config.Duration{Duration: 10 * time.Minute}},
		"testdata/pods/initstuck.json", []detectorCase{{
			name: "two failures with min_failures 2; the PV name leads to the claim", namespace: "spark-jobs", pod: "adhoc-backfill-driver",
			want: []wantFinding{{evidence: []string{
				"volume history: PVC spark-events-pvc is Bound (ReadWriteMany, volume pvc-77c1d0e2-5a4b-4c3d-9e8f-0a1b2c3d4e5f, storage class efs-sc)",
			}, mentions: []string{"MountVolume.MountDevice failed", "minimum 2"}}},
		}})
	assert.ElementsMatch(t, []config.FieldError{
		{Field: "min_failures", Message: "must be at least 1"},
		{Field: "window", Message: "must be greater than 0"},
	}, (&VolumeMountFailedArgs{}).Validate())
	assert.Equal(t, &VolumeMountFailedArgs{MinFailures: 3, Window: config.Duration{Duration: 10 * time.Minute}}, DefaultVolumeMountFailedArgs())
}
