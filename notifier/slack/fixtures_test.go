package slack

import (
	"fmt"
	"time"

	"github.com/podmedic/podmedic/finding"
)

// at is the fixed clock of the fixtures: 2026-11-20 02:13:09 UTC.
var at = time.Date(2026, 11, 20, 2, 13, 9, 0, time.UTC)

func airflowTask(dag, task string, try int) *finding.AirflowTask {
	return &finding.AirflowTask{DagID: dag, TaskID: task, RunID: "scheduled__2026-11-19T00:00:00+00:00", TryNumber: try}
}

// fixtures are findings of every kind, as the detectors produce them on a bad night (from
// rules/testdata/replay/bad-night.json, with the rules of rules.yaml).
func fixtures() map[finding.Kind]*finding.Finding {
	return map[finding.Kind]*finding.Finding{
		finding.OOMKilled: {
			Kind: finding.OOMKilled, Rule: "oom", Severity: finding.SeverityWarning, Namespace: "airflow",
			Pod: "etl-daily-load-3nk8x0qz", Container: "base", UID: "b800f7df-e48f-4374-a007-ed5af81fe589",
			Airflow:  airflowTask("etl_daily", "load", 1),
			Evidence: []string{"container base terminated: OOMKilled (exit 137) at 2026-11-20T02:13:09Z", "memory limit 2Gi", "memory request 1Gi"},
			Action: &finding.Action{Type: finding.ActionProposeMemoryLimit, Mode: finding.ModeApprove,
				Params: map[string]string{"container": "base", "limit": "3Gi", "request": "2Gi"}},
			Route: "oncall",
		},
		finding.SIGKILL: {
			Kind: finding.SIGKILL, Rule: "sigkill", Severity: finding.SeverityWarning, Namespace: "airflow",
			Pod: "etl-hourly-extract-p0x8k2dw", Container: "base", UID: "7b49a2a1-c2c9-4b6c-ad1f-cbc2369de93c",
			Airflow: &finding.AirflowTask{DagID: "etl_hourly", TaskID: "extract", RunID: "scheduled__2026-11-20T01:00:00+00:00", TryNumber: 1},
			Evidence: []string{
				"container base killed by SIGKILL (exit 137, reason Error) at 2026-11-20T02:18:10Z: not an OOM kill",
				"cause: node ip-10-0-7-44.ec2.internal shut down and the container did not stop within the shutdown grace period",
				"event Killing (last 02:17:40Z): Stopping container base",
				`Airflow logs this as "Task exited with return code Negsignal.SIGKILL"; a higher memory limit will not help`,
			},
			Route: "oncall",
		},
		finding.InitStuck: {
			Kind: finding.InitStuck, Rule: "init-stuck", Severity: finding.SeverityWarning, Namespace: "spark-jobs",
			Pod: "nightly-aggregation-driver", UID: "043b5ee5-6763-429a-a984-dbbf02973203",
			Owner: finding.Owner{Kind: "SparkApplication", Name: "nightly-aggregation"},
			Spark: &finding.SparkApp{AppName: "nightly-aggregation", AppID: "spark-e332160880e8b7f413b3d912328381aa", Role: "driver", Owner: "nightly-aggregation"},
			Evidence: []string{
				"init container wait-for-pvc not complete after 39m (Init:0/1), timeout 15m",
				"pod Pending on ip-10-0-3-17.ec2.internal since 2026-11-20T01:50:00Z",
				`event FailedAttachVolume (last 01:50:00Z) from attachdetach-controller: Multi-Attach error for volume "pvc-3f2a9c1e-8b7d-4e6f-a1b2-c3d4e5f60718" Volume is already used by pod(s) spark-history-server-6d9f7b8c5-x2x7q`,
				"volume history: PVC spark-history-server-pvc is Bound (ReadWriteOnce, volume pvc-3f2a9c1e-8b7d-4e6f-a1b2-c3d4e5f60718, storage class gp3)",
			},
			Action: &finding.Action{Type: finding.ActionDeletePod, Mode: finding.ModeApprove, Params: map[string]string{}},
			Route:  "oncall",
		},
		finding.Evicted: {
			Kind: finding.Evicted, Rule: "evicted", Severity: finding.SeverityWarning, Namespace: "airflow",
			Pod: "etl-daily-aggregate-9c4vx1tn", UID: "078d966e-73ee-436c-a176-349108dc2974",
			Airflow: airflowTask("etl_daily", "aggregate", 1),
			Evidence: []string{
				"pod evicted by the kubelet: node ip-10-0-4-203.ec2.internal was low on memory (phase Failed)",
				"container base used 3.4Gi of memory against a request of 1Gi: under node pressure the kubelet evicts first the pods using most above their requests; raise the request towards the usage",
				"condition DisruptionTarget=True (TerminationByKubelet) at 2026-11-20T02:08:31Z",
			},
			Route: "oncall",
		},
		finding.TaskFailed: {
			Kind: finding.TaskFailed, Rule: "airflow-task-failed", Severity: finding.SeverityWarning, Namespace: "airflow",
			Pod: "etl-daily-validate-b6m1r9xe", Container: "base", UID: "f6f1b6b4-9ac0-47ed-a732-204348dfa0b4",
			Airflow:  airflowTask("etl_daily", "validate", 2),
			Evidence: []string{"container base exited with code 1, reason Error, at 2026-11-20T02:12:40Z after 2m29s"},
			Action: &finding.Action{Type: finding.ActionAirflowClearTask, Mode: finding.ModeApprove, Params: map[string]string{
				"dag_id": "etl_daily", "dag_run_id": "scheduled__2026-11-19T00:00:00+00:00", "only_failed": "true", "task_id": "validate"}},
			Route: "oncall",
		},
		finding.PVCPending: {
			Kind: finding.PVCPending, Rule: "pvc-pending", Severity: finding.SeverityWarning, Namespace: "spark-jobs",
			PVC: "spark-checkpoints-pvc", UID: "02565138-dbd1-4f4c-a02c-212b5b4855d3",
			Evidence: []string{
				"PVC spark-checkpoints-pvc is Pending for 24m (since 2026-11-20T02:05:00Z), timeout 10m",
				"storage class efs-sc, provisioner efs.csi.aws.com, ReadWriteMany, requests 100Gi",
				`event ProvisioningFailed x9 (last 02:28:33Z) from efs.csi.aws.com: failed to provision volume with StorageClass "efs-sc": rpc error: code = Internal desc = AccessDeniedException: User <arn:aws:sts::123456789012:assumed-role/efs-csi-controller> is not authorized to perform: elasticfilesystem:DescribeAccessPoints & more`,
			},
			Route: "oncall",
		},
		finding.VolumeMountFailed: {
			Kind: finding.VolumeMountFailed, Rule: "volume-mount-failed", Severity: finding.SeverityCritical, Namespace: "spark-jobs",
			Pod: "history-compaction-driver", UID: "5d0c1e2f-3a4b-4c5d-8e9f-0a1b2c3d4e5f",
			Owner: finding.Owner{Kind: "SparkApplication", Name: "history-compaction"},
			Spark: &finding.SparkApp{AppName: "history-compaction", AppID: "spark-0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f", Role: "driver"},
			Evidence: []string{
				"event FailedMount x5 in 10m (last 02:11:02Z): MountVolume.SetUp failed for volume \"history\": mount failed: exit status 32",
				"event FailedAttachVolume x3 (last 02:10:40Z): Multi-Attach error for volume \"pvc-3f2a9c1e\" Volume is already exclusively attached to one node and can't be attached to another",
				"volume history: PVC spark-history-server-pvc (ReadWriteOnce)",
			},
			Route: "oncall",
		},
		finding.CrashLoop: {
			Kind: finding.CrashLoop, Rule: "crash-loop", Severity: finding.SeverityWarning, Namespace: "airflow",
			Pod: "airflow-dag-processor-7b9c6d5f4-qm2xv", Container: "dag-processor", UID: "3d1a77f4-cf97-4cf0-a826-a8ea4c369d38",
			Owner: finding.Owner{Kind: "ReplicaSet", Name: "airflow-dag-processor-7b9c6d5f4"},
			Evidence: []string{
				"container dag-processor in CrashLoopBackOff after 7 restarts (minimum 5)",
				"last termination: Error (exit 1) at 2026-11-20T02:25:03Z after running 12s",
			},
			Occurrence: "7",
			Route:      "oncall",
		},
		finding.StuckTerminating: {
			Kind: finding.StuckTerminating, Rule: "stuck-terminating", Severity: finding.SeverityWarning, Namespace: "airflow",
			Pod: "etl-daily-export-1r8w3v6k", UID: "7947b0a6-f80f-4ee6-a6f0-a4de8b523c8c",
			Airflow: airflowTask("etl_daily", "export", 1),
			Evidence: []string{
				"pod still present 24m after its grace period ended (deletionTimestamp 2026-11-20T02:05:00Z, grace period 600s), timeout 10m",
				"node ip-10-0-9-12.ec2.internal, phase Running",
			},
			Action: &finding.Action{Type: finding.ActionDeletePod, Mode: finding.ModeApprove, Params: map[string]string{"force": "true"}},
			Route:  "oncall",
		},
		finding.Unschedulable: {
			Kind: finding.Unschedulable, Rule: "unschedulable", Severity: finding.SeverityWarning, Namespace: "spark-jobs",
			Pod: "checkpoint-compactor-driver", UID: "a8cb1a7f-8828-4f88-a2a0-4fbf9057ccf0",
			Owner: finding.Owner{Kind: "SparkApplication", Name: "checkpoint-compactor"},
			Spark: &finding.SparkApp{AppName: "checkpoint-compactor", AppID: "spark-b0ef35939e7be10e667441c0098c5aef", Role: "driver", Owner: "checkpoint-compactor"},
			Evidence: []string{
				"pod unschedulable for 24m (since 2026-11-20T02:05:02Z), timeout 10m: 0/9 nodes are available: pod has unbound immediate PersistentVolumeClaims.",
				"volume checkpoints: PVC spark-checkpoints-pvc is Pending (ReadWriteMany, storage class efs-sc)",
			},
			Route: "oncall",
		},
		finding.LimitRatio: {
			Kind: finding.LimitRatio, Rule: "limit-ratio", Severity: finding.SeverityInfo, Namespace: "airflow",
			Pod: "airflow-webserver-6f7d8c9b5-4kx2p", Container: "webserver",
			Owner: finding.Owner{Kind: "ReplicaSet", Name: "airflow-webserver-6f7d8c9b5"},
			Evidence: []string{
				"container webserver: memory limit 4Gi is 4x its request 1Gi (max 1.5): the scheduler places pods by their requests, so nodes full of these run out of memory; set the request to at least 2731Mi or the limit to at most 1536Mi",
				"owner ReplicaSet/airflow-webserver-6f7d8c9b5: one finding for all its pods (e.g. airflow-webserver-6f7d8c9b5-4kx2p)",
			},
		},
		finding.SparkAppFailed: {
			Kind: finding.SparkAppFailed, Rule: "spark-app-failed", Severity: finding.SeverityCritical, Namespace: "spark",
			UID: "b1c2d3e4-0000-4000-8000-000000000002", Occurrence: "5f0c9d1e-run-1",
			Spark:   &finding.SparkApp{Application: "nightly-agg-20261120", State: "FAILED", Attempts: 2},
			Airflow: &finding.AirflowTask{DagID: "nightly_agg", TaskID: "spark_aggregate", TryNumber: 1},
			Evidence: []string{
				"SparkApplication nightly-agg-20261120 is FAILED after 2 execution attempt(s): driver container failed with ExitCode: 137, Reason: OOMKilled",
				"driver pod nightly-agg-20261120-driver: container spark-kubernetes-driver terminated OOMKilled (exit code 137)",
				"executors: 4 FAILED",
				"created by Airflow task nightly_agg.spark_aggregate (try 1, SparkKubernetesOperator)",
			},
		},
	}
}

// proposalFor is the proposal the actions stage makes of a finding with an approve action.
func proposalFor(f *finding.Finding, id string) *finding.Proposal {
	return &finding.Proposal{
		ID: id, Finding: *f, Action: *f.Action, State: finding.StatePending,
		CreatedAt: at, ExpiresAt: at.Add(30 * time.Minute),
		Target: finding.Target{Kind: "Pod", Namespace: f.Namespace, Name: f.Pod, UID: f.UID},
	}
}

// noticeFor is the notice the pipeline sends for a finding: with a proposal in approve mode.
func noticeFor(f *finding.Finding) *finding.Notice {
	n := &finding.Notice{Type: finding.NoticeFinding, Finding: f}
	if f.Action != nil && f.Action.Mode == finding.ModeApprove {
		n.Proposal = proposalFor(f, "p-"+string(f.Kind))
	}
	return n
}

// worker is the n-th worker pod of a storm: an OOM-killed Airflow task.
func worker(i int) *finding.Finding {
	return &finding.Finding{
		Kind: finding.OOMKilled, Rule: "oom-other", Severity: finding.SeverityWarning, Namespace: "airflow",
		Pod: fmt.Sprintf("etl-daily-load-%04d", i), Container: "base", UID: fmt.Sprintf("uid-%04d", i),
		Airflow:  airflowTask("etl_daily", "load", 1),
		Evidence: []string{"container base terminated: OOMKilled (exit 137)", "memory limit 2Gi"},
		Route:    "oncall",
	}
}
