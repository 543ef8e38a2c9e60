// Package podgen builds realistic Airflow KubernetesExecutor worker pods for benchmarks: the
// labels and annotations Airflow sets, 30 environment variables, the usual volumes, managed
// fields as the apiserver records them, and a status as the kubelet writes it. It depends only
// on the Kubernetes API types, so every package's benchmarks can use it.
package podgen

import (
	"fmt"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Epoch is the clock of the generated pods: they were created a few minutes before it.
var Epoch = time.Date(2026, 11, 20, 2, 30, 0, 0, time.UTC)

// dags and tasks make the pods of a run look like a real DAG set.
var (
	dags  = []string{"etl_daily", "etl_hourly", "ml_features", "billing_export", "crm_sync", "dq_checks"}
	tasks = []string{"extract", "transform", "load", "aggregate", "validate", "publish", "compact"}
)

// Name is the name of the i-th pod: dag-task-<suffix>, as the KubernetesExecutor makes them.
func Name(i int) string {
	return fmt.Sprintf("%s-%s-%08x", dashed(dags[i%len(dags)]), tasks[i%len(tasks)], uint32(i)*2654435761)
}

func dashed(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c == '_' {
			b[i] = '-'
		}
	}
	return string(b)
}

// AirflowWorker returns the i-th worker pod as the scheduler creates it (no status, no
// managed fields, no uid): what a client sends to the apiserver.
func AirflowWorker(namespace string, i int) *corev1.Pod {
	dag, task := dags[i%len(dags)], tasks[i%len(tasks)]
	runID := "scheduled__" + Epoch.Add(-time.Duration(i%24)*time.Hour).Format("2006-01-02T15:04:05+00:00")
	try := strconv.Itoa(1 + i%3)
	created := Epoch.Add(-time.Duration(5+i%40) * time.Minute)
	ptr := func(v int64) *int64 { return &v }
	env := []corev1.EnvVar{
		{Name: "AIRFLOW__CORE__EXECUTOR", Value: "LocalExecutor"},
		{Name: "AIRFLOW__CORE__FERNET_KEY", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
			LocalObjectReference: corev1.LocalObjectReference{Name: "airflow-fernet-key"}, Key: "fernet-key"}}},
		{Name: "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
			LocalObjectReference: corev1.LocalObjectReference{Name: "airflow-metadata"}, Key: "connection"}}},
		{Name: "AIRFLOW_CONN_AIRFLOW_DB", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
			LocalObjectReference: corev1.LocalObjectReference{Name: "airflow-metadata"}, Key: "connection"}}},
		{Name: "AIRFLOW__WEBSERVER__SECRET_KEY", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
			LocalObjectReference: corev1.LocalObjectReference{Name: "airflow-webserver-secret-key"}, Key: "webserver-secret-key"}}},
		{Name: "AIRFLOW__CORE__LOAD_EXAMPLES", Value: "False"},
		{Name: "AIRFLOW__CORE__DAGS_FOLDER", Value: "/opt/airflow/dags/repo/dags"},
		{Name: "AIRFLOW__LOGGING__REMOTE_LOGGING", Value: "True"},
		{Name: "AIRFLOW__LOGGING__REMOTE_BASE_LOG_FOLDER", Value: "s3://acme-airflow-logs/prod"},
		{Name: "AIRFLOW__LOGGING__REMOTE_LOG_CONN_ID", Value: "aws_logs"},
		{Name: "AIRFLOW__KUBERNETES_EXECUTOR__NAMESPACE", Value: namespace},
		{Name: "AIRFLOW__KUBERNETES_EXECUTOR__DELETE_WORKER_PODS", Value: "True"},
		{Name: "AIRFLOW__KUBERNETES_EXECUTOR__DELETE_WORKER_PODS_ON_FAILURE", Value: "False"},
		{Name: "AIRFLOW__METRICS__STATSD_ON", Value: "True"},
		{Name: "AIRFLOW__METRICS__STATSD_HOST", Value: "airflow-statsd.airflow.svc.cluster.local"},
		{Name: "AIRFLOW__METRICS__STATSD_PORT", Value: "9125"},
		{Name: "AIRFLOW__CORE__PARALLELISM", Value: "128"},
		{Name: "AIRFLOW__SCHEDULER__STANDALONE_DAG_PROCESSOR", Value: "True"},
		{Name: "AIRFLOW_HOME", Value: "/opt/airflow"},
		{Name: "AIRFLOW_VERSION", Value: "2.10.5"},
		{Name: "AWS_DEFAULT_REGION", Value: "eu-west-1"},
		{Name: "AWS_REGION", Value: "eu-west-1"},
		{Name: "AWS_ROLE_ARN", Value: "arn:aws:iam::123456789012:role/airflow-worker"},
		{Name: "AWS_WEB_IDENTITY_TOKEN_FILE", Value: "/var/run/secrets/eks.amazonaws.com/serviceaccount/token"},
		{Name: "AWS_STS_REGIONAL_ENDPOINTS", Value: "regional"},
		{Name: "PYTHONUNBUFFERED", Value: "1"},
		{Name: "DBT_PROFILES_DIR", Value: "/opt/airflow/dags/repo/dbt"},
		{Name: "SNOWFLAKE_WAREHOUSE", Value: "ETL_WH"},
		{Name: "SNOWFLAKE_ACCOUNT", Value: "acme-eu1"},
		{Name: "POD_IP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "status.podIP"}}},
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name:              Name(i),
			Namespace:         namespace,
			CreationTimestamp: metav1.NewTime(created),
			Labels: map[string]string{
				"airflow-worker":      strconv.Itoa(1000 + i%7),
				"airflow_version":     "2.10.5",
				"component":           "worker",
				"dag_id":              dag,
				"kubernetes_executor": "True",
				"release":             "airflow",
				"run_id":              "scheduled__2026-11-20T0100000000-5c2f1a9e1",
				"task_id":             task,
				"tier":                "airflow",
				"try_number":          try,
			},
			Annotations: map[string]string{
				"dag_id":     dag,
				"task_id":    task,
				"run_id":     runID,
				"try_number": try,
				"cluster-autoscaler.kubernetes.io/safe-to-evict": "false",
				"kubectl.kubernetes.io/default-container":        "base",
				"eks.amazonaws.com/role-arn":                     "arn:aws:iam::123456789012:role/airflow-worker",
				"prometheus.io/scrape":                           "false",
			},
		},
		Spec: corev1.PodSpec{
			InitContainers: []corev1.Container{{
				Name:  "git-sync-init",
				Image: "registry.k8s.io/git-sync/git-sync:v4.4.0",
				Env: []corev1.EnvVar{{Name: "GITSYNC_REPO", Value: "git@github.com:acme/airflow-dags.git"},
					{Name: "GITSYNC_REF", Value: "main"}, {Name: "GITSYNC_ONE_TIME", Value: "true"}},
				Resources: corev1.ResourceRequirements{
					Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("128Mi")},
					Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("50m"), corev1.ResourceMemory: resource.MustParse("128Mi")},
				},
				VolumeMounts: []corev1.VolumeMount{{Name: "dags", MountPath: "/git"}},
			}},
			Containers: []corev1.Container{{
				Name:            "base",
				Image:           "123456789012.dkr.ecr.eu-west-1.amazonaws.com/airflow:2.10.5-py3.11-20261118",
				ImagePullPolicy: corev1.PullIfNotPresent,
				Args: []string{"airflow", "tasks", "run", dag, task, runID, "--local", "--subdir",
					"DAGS_FOLDER/" + dag + ".py"},
				Env: env,
				Resources: corev1.ResourceRequirements{
					Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("2Gi")},
					Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m"), corev1.ResourceMemory: resource.MustParse("2Gi")},
				},
				VolumeMounts: []corev1.VolumeMount{
					{Name: "logs", MountPath: "/opt/airflow/logs"},
					{Name: "config", MountPath: "/opt/airflow/airflow.cfg", SubPath: "airflow.cfg", ReadOnly: true},
					{Name: "dags", MountPath: "/opt/airflow/dags", ReadOnly: true},
				},
				TerminationMessagePath:   "/dev/termination-log",
				TerminationMessagePolicy: corev1.TerminationMessageReadFile,
			}},
			Volumes: []corev1.Volume{
				{Name: "logs", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
				{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
					LocalObjectReference: corev1.LocalObjectReference{Name: "airflow-config"}}}},
				{Name: "dags", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
			},
			RestartPolicy:                 corev1.RestartPolicyNever,
			TerminationGracePeriodSeconds: ptr(600),
			ServiceAccountName:            "airflow-worker",
			SecurityContext:               &corev1.PodSecurityContext{RunAsUser: ptr(50000), FSGroup: ptr(0)},
			NodeSelector:                  map[string]string{"workload": "airflow"},
			Tolerations: []corev1.Toleration{{Key: "dedicated", Operator: corev1.TolerationOpEqual, Value: "airflow",
				Effect: corev1.TaintEffectNoSchedule}},
			Affinity: &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{
				PreferredDuringSchedulingIgnoredDuringExecution: []corev1.WeightedPodAffinityTerm{{Weight: 100,
					PodAffinityTerm: corev1.PodAffinityTerm{TopologyKey: "kubernetes.io/hostname",
						LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"component": "worker"}}}}}}},
		},
	}
}

// Node is the node the i-th pod runs on.
func Node(i int) string {
	return fmt.Sprintf("ip-10-0-%d-%d.eu-west-1.compute.internal", i%16, 10+i%200)
}

// RunningStatus is the status the kubelet writes for the i-th pod once it runs: conditions,
// IPs, the init container done, the main container running.
func RunningStatus(i int) corev1.PodStatus {
	created := Epoch.Add(-time.Duration(5+i%40) * time.Minute)
	started := metav1.NewTime(created.Add(3 * time.Second))
	running := metav1.NewTime(created.Add(9 * time.Second))
	cond := func(t corev1.PodConditionType, at metav1.Time) corev1.PodCondition {
		return corev1.PodCondition{Type: t, Status: corev1.ConditionTrue, LastTransitionTime: at}
	}
	tr := true
	podIP := fmt.Sprintf("10.0.%d.%d", 32+i/250%200, i%250+2)
	return corev1.PodStatus{
		Phase: corev1.PodRunning,
		Conditions: []corev1.PodCondition{
			cond("PodReadyToStartContainers", started), cond(corev1.PodInitialized, running),
			cond(corev1.PodReady, running), cond(corev1.ContainersReady, running), cond(corev1.PodScheduled, metav1.NewTime(created)),
		},
		HostIP:    fmt.Sprintf("10.0.%d.%d", i%16, 10+i%200),
		HostIPs:   []corev1.HostIP{{IP: fmt.Sprintf("10.0.%d.%d", i%16, 10+i%200)}},
		PodIP:     podIP,
		PodIPs:    []corev1.PodIP{{IP: podIP}},
		StartTime: &started,
		QOSClass:  corev1.PodQOSBurstable,
		InitContainerStatuses: []corev1.ContainerStatus{{
			Name:  "git-sync-init",
			Image: "registry.k8s.io/git-sync/git-sync:v4.4.0",
			ImageID: "registry.k8s.io/git-sync/git-sync@sha256:" +
				"5e3d0e1b1c0e6d54f2b0a8a4f3e9c7d9b2a1f0e8d7c6b5a4f3e2d1c0b9a8f7e6",
			ContainerID: fmt.Sprintf("containerd://%064x", uint64(i)*0x9e3779b97f4a7c15),
			Ready:       true,
			State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 0, Reason: "Completed",
				StartedAt: started, FinishedAt: running}},
		}},
		ContainerStatuses: []corev1.ContainerStatus{{
			Name:  "base",
			Image: "123456789012.dkr.ecr.eu-west-1.amazonaws.com/airflow:2.10.5-py3.11-20261118",
			ImageID: "123456789012.dkr.ecr.eu-west-1.amazonaws.com/airflow@sha256:" +
				"0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9",
			ContainerID: fmt.Sprintf("containerd://%064x", uint64(i)*0xbf58476d1ce4e5b9),
			Ready:       true,
			Started:     &tr,
			State:       corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: running}},
		}},
	}
}

// OOMKilledStatus is the status of the i-th pod after its main container was OOM killed at t.
func OOMKilledStatus(i int, t time.Time) corev1.PodStatus {
	s := RunningStatus(i)
	s.Phase = corev1.PodFailed
	for k := range s.Conditions {
		if s.Conditions[k].Type == corev1.PodReady || s.Conditions[k].Type == corev1.ContainersReady {
			s.Conditions[k].Status = corev1.ConditionFalse
			s.Conditions[k].Reason = "PodFailed"
			s.Conditions[k].LastTransitionTime = metav1.NewTime(t)
		}
	}
	f := false
	started := s.ContainerStatuses[0].State.Running.StartedAt
	s.ContainerStatuses[0].Ready, s.ContainerStatuses[0].Started = false, &f
	s.ContainerStatuses[0].State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
		ExitCode: 137, Reason: "OOMKilled", StartedAt: started, FinishedAt: metav1.NewTime(t),
		ContainerID: s.ContainerStatuses[0].ContainerID}}
	return s
}

// Stored returns the i-th pod as the apiserver stores and serves it after the kubelet wrote
// its status: uid, resourceVersion, node, defaults, managed fields of the scheduler and the
// kubelet, and status (running, or OOMKilled when oom).
func Stored(namespace string, i int, oom bool) *corev1.Pod {
	p := AirflowWorker(namespace, i)
	p.UID = types.UID(fmt.Sprintf("%08x-1c2d-4e5f-8a9b-%012x", uint32(i)*2246822519, uint64(i)*3266489917))
	p.ResourceVersion = strconv.Itoa(100000 + 3*i)
	p.Generation = 1
	p.Spec.NodeName = Node(i)
	p.Spec.DNSPolicy = corev1.DNSClusterFirst
	p.Spec.SchedulerName = "default-scheduler"
	p.Spec.EnableServiceLinks = new(bool)
	p.Spec.PreemptionPolicy = new(corev1.PreemptionPolicy)
	*p.Spec.PreemptionPolicy = corev1.PreemptLowerPriority
	p.Spec.Priority = new(int32)
	p.Spec.Tolerations = append(p.Spec.Tolerations,
		corev1.Toleration{Key: "node.kubernetes.io/not-ready", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: new(int64)},
		corev1.Toleration{Key: "node.kubernetes.io/unreachable", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: new(int64)})
	*p.Spec.Tolerations[1].TolerationSeconds, *p.Spec.Tolerations[2].TolerationSeconds = 300, 300
	p.ManagedFields = ManagedFields(p.CreationTimestamp.Time)
	if oom {
		p.Status = OOMKilledStatus(i, Epoch.Add(-time.Minute))
	} else {
		p.Status = RunningStatus(i)
	}
	return p
}

// ManagedFields are the field managers of a worker pod: the scheduler's create and the
// kubelet's status updates, as the apiserver records them (about 2 KB of JSON).
func ManagedFields(at time.Time) []metav1.ManagedFieldsEntry {
	t := metav1.NewTime(at)
	return []metav1.ManagedFieldsEntry{
		{Manager: "airflow-scheduler", Operation: metav1.ManagedFieldsOperationUpdate, APIVersion: "v1", Time: &t,
			FieldsType: "FieldsV1", FieldsV1: &metav1.FieldsV1{Raw: []byte(`{"f:metadata":{"f:annotations":{".":{},"f:cluster-autoscaler.kubernetes.io/safe-to-evict":{},"f:dag_id":{},"f:eks.amazonaws.com/role-arn":{},"f:kubectl.kubernetes.io/default-container":{},"f:prometheus.io/scrape":{},"f:run_id":{},"f:task_id":{},"f:try_number":{}},"f:labels":{".":{},"f:airflow-worker":{},"f:airflow_version":{},"f:component":{},"f:dag_id":{},"f:kubernetes_executor":{},"f:release":{},"f:run_id":{},"f:task_id":{},"f:tier":{},"f:try_number":{}}},"f:spec":{"f:affinity":{".":{},"f:podAntiAffinity":{".":{},"f:preferredDuringSchedulingIgnoredDuringExecution":{}}},"f:containers":{"k:{\"name\":\"base\"}":{".":{},"f:args":{},"f:env":{".":{},"k:{\"name\":\"AIRFLOW_HOME\"}":{".":{},"f:name":{},"f:value":{}},"k:{\"name\":\"AIRFLOW__CORE__EXECUTOR\"}":{".":{},"f:name":{},"f:value":{}},"k:{\"name\":\"POD_IP\"}":{".":{},"f:name":{},"f:valueFrom":{".":{},"f:fieldRef":{}}}},"f:image":{},"f:imagePullPolicy":{},"f:name":{},"f:resources":{".":{},"f:limits":{".":{},"f:memory":{}},"f:requests":{".":{},"f:cpu":{},"f:memory":{}}},"f:terminationMessagePath":{},"f:terminationMessagePolicy":{},"f:volumeMounts":{".":{},"k:{\"mountPath\":\"/opt/airflow/dags\"}":{".":{},"f:mountPath":{},"f:name":{},"f:readOnly":{}},"k:{\"mountPath\":\"/opt/airflow/logs\"}":{".":{},"f:mountPath":{},"f:name":{}}}}},"f:initContainers":{},"f:nodeSelector":{},"f:restartPolicy":{},"f:securityContext":{".":{},"f:fsGroup":{},"f:runAsUser":{}},"f:serviceAccountName":{},"f:terminationGracePeriodSeconds":{},"f:tolerations":{},"f:volumes":{".":{},"k:{\"name\":\"config\"}":{".":{},"f:configMap":{".":{},"f:name":{}},"f:name":{}},"k:{\"name\":\"dags\"}":{".":{},"f:emptyDir":{},"f:name":{}},"k:{\"name\":\"logs\"}":{".":{},"f:emptyDir":{},"f:name":{}}}}}`)}},
		{Manager: "kubelet", Operation: metav1.ManagedFieldsOperationUpdate, APIVersion: "v1", Time: &t, Subresource: "status",
			FieldsType: "FieldsV1", FieldsV1: &metav1.FieldsV1{Raw: []byte(`{"f:status":{"f:conditions":{"k:{\"type\":\"ContainersReady\"}":{".":{},"f:lastProbeTime":{},"f:lastTransitionTime":{},"f:status":{},"f:type":{}},"k:{\"type\":\"Initialized\"}":{".":{},"f:lastProbeTime":{},"f:lastTransitionTime":{},"f:status":{},"f:type":{}},"k:{\"type\":\"PodReadyToStartContainers\"}":{".":{},"f:lastProbeTime":{},"f:lastTransitionTime":{},"f:status":{},"f:type":{}},"k:{\"type\":\"Ready\"}":{".":{},"f:lastProbeTime":{},"f:lastTransitionTime":{},"f:status":{},"f:type":{}}},"f:containerStatuses":{},"f:hostIP":{},"f:hostIPs":{},"f:initContainerStatuses":{},"f:phase":{},"f:podIP":{},"f:podIPs":{".":{},"k:{\"ip\":\"10.0.32.2\"}":{".":{},"f:ip":{}}},"f:startTime":{}}}`)}},
	}
}
