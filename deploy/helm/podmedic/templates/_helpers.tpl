{{/* Name of the chart, or nameOverride. */}}
{{- define "podmedic.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Full name of the release's objects: the release name, with the chart name unless it is
already in it. */}}
{{- define "podmedic.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Labels that select the pods; never change them (Deployment selectors are immutable). */}}
{{- define "podmedic.selectorLabels" -}}
app.kubernetes.io/name: {{ include "podmedic.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Labels of every object. */}}
{{- define "podmedic.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "podmedic.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: remediation
app.kubernetes.io/part-of: podmedic
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "podmedic.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "podmedic.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The image reference: repository@digest, else repository:tag (default v<appVersion>). */}}
{{- define "podmedic.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default (printf "v%s" .Chart.AppVersion) .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* The ConfigMap holding rules.yaml. */}}
{{- define "podmedic.rulesConfigMap" -}}
{{- default (printf "%s-rules" (include "podmedic.fullname" .)) .Values.existingRulesConfigMap -}}
{{- end -}}

{{/* The content of rules.yaml: .Values.rules, else the chart's copy of the default rules. */}}
{{- define "podmedic.rules" -}}
{{- if .Values.rules -}}
{{- .Values.rules -}}
{{- else -}}
{{- .Files.Get "files/rules.yaml" -}}
{{- end -}}
{{- end -}}

{{/* Whether podmedic runs its embedded NATS server. */}}
{{- define "podmedic.embeddedNATS" -}}
{{- if not (or .Values.nats.url .Values.nats.existingSecret) -}}true{{- end -}}
{{- end -}}

{{/* The claim of the embedded NATS store. */}}
{{- define "podmedic.dataClaim" -}}
{{- default (printf "%s-data" (include "podmedic.fullname" .)) .Values.nats.embedded.persistence.existingClaim -}}
{{- end -}}

{{/* Values that cannot work together fail the render with a message that says what to do. */}}
{{- define "podmedic.validate" -}}
{{- if and (include "podmedic.embeddedNATS" .) (gt (int .Values.replicas) 1) -}}
{{- fail (printf "replicas: %d needs an external NATS (nats.url or nats.existingSecret): each replica's embedded NATS server would have its own store and every replica would report and act on every failure" (int .Values.replicas)) -}}
{{- end -}}
{{- if lt (int .Values.replicas) 1 -}}
{{- fail "replicas must be at least 1" -}}
{{- end -}}
{{- if not (has .Values.consoleFormat (list "text" "json")) -}}
{{- fail (printf "consoleFormat must be text or json, not %q" .Values.consoleFormat) -}}
{{- end -}}
{{- if not (has .Values.logFormat (list "console" "json")) -}}
{{- fail (printf "logFormat must be console or json, not %q" .Values.logFormat) -}}
{{- end -}}
{{- if and .Values.airflow.existingSecret .Values.airflow.usernameKey (not .Values.airflow.passwordKey) -}}
{{- fail "airflow.usernameKey needs airflow.passwordKey (or clear usernameKey and set tokenKey)" -}}
{{- end -}}
{{- with .Values.resources -}}
{{- range $k, $v := (default dict .limits) -}}
{{- $req := index (default dict $.Values.resources.requests) $k -}}
{{- if and $req (ne (toString $req) (toString $v)) -}}
{{- fail (printf "resources.requests.%s (%v) must equal resources.limits.%s (%v): podmedic runs with Guaranteed QoS" $k $req $k $v) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* The enabled rules and schedules (sweeps) whose action this installation's actions values
do not permit, as "rule (type)" and "schedule name (type)"; empty when rules.yaml comes from an
existing ConfigMap. */}}
{{- define "podmedic.unpermittedRules" -}}
{{- if not .Values.existingRulesConfigMap -}}
{{- $cfg := fromYaml (include "podmedic.rules" .) -}}
{{- $a := .Values.actions -}}
{{- $out := list -}}
{{- range $r := (default list $cfg.rules) -}}
{{- if and $r.action (not $r.disabled) -}}
{{- $t := $r.action.type -}}
{{- $mode := default "approve" $r.action.mode -}}
{{- if ne $mode "notify" -}}
{{- if or (and (eq $t "delete-pod") (not $a.deletePods)) (and (eq $t "evict-pod") (not $a.evictPods)) (and (eq $t "airflow-clear-task") (not $a.airflowClear)) (and (eq $t "propose-memory-limit") (not $a.patchWorkloads) (not (has (toString (dig "match" "workload" "" $r)) (list "airflow" "spark")))) -}}
{{- $out = append $out (printf "%s (%s)" $r.name $t) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- range $s := (default list $cfg.schedules) -}}
{{- $act := dig "sweep" "action" dict $s -}}
{{- if and $act (not $s.disabled) (ne (toString (default "approve" $act.mode)) "notify") -}}
{{- $t := $act.type -}}
{{- if or (and (eq $t "delete-pod") (not $a.deletePods)) (and (eq $t "evict-pod") (not $a.evictPods)) (and (eq $t "airflow-clear-task") (not $a.airflowClear)) (and (eq $t "propose-memory-limit") (not $a.patchWorkloads)) -}}
{{- $out = append $out (printf "schedule %s (%s)" $s.name $t) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- join ", " $out -}}
{{- end -}}
{{- end -}}
