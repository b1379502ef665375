{{/* Names and labels. */}}
{{- define "gql-jobs.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "gql-jobs.fullname" -}}
{{- if contains .Chart.Name .Release.Name }}
{{- .Release.Name | trunc 50 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 50 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "gql-jobs.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
app.kubernetes.io/name: {{ include "gql-jobs.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Selector labels of one component (api or worker): pass (list $ "api"). */}}
{{- define "gql-jobs.selectorLabels" -}}
{{- $ := index . 0 -}}
app.kubernetes.io/name: {{ include "gql-jobs.name" $ }}
app.kubernetes.io/instance: {{ $.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end }}

{{- define "gql-jobs.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}

{{- define "gql-jobs.secretName" -}}
{{- .Values.secrets.existingSecret | default (printf "%s-secrets" (include "gql-jobs.fullname" .)) }}
{{- end }}

{{- define "gql-jobs.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- .Values.serviceAccount.name | default (include "gql-jobs.fullname" .) }}
{{- else }}
{{- .Values.serviceAccount.name | default "default" }}
{{- end }}
{{- end }}

{{/* The job timeout the workers enforce, read as the app reads it: the GQL_JOBS_ name wins. */}}
{{- define "gql-jobs.jobTimeout" -}}
{{- $s := .Values.settings }}
{{- int (coalesce (get $s "GQL_JOBS_DEFAULT_TIMEOUT") (get $s "RQ_DEFAULT_TIMEOUT") 900) }}
{{- end }}

{{/* A worker's stop grace: longer than the job timeout, so SIGTERM lets the job in hand finish. */}}
{{- define "gql-jobs.workerGrace" -}}
{{- $timeout := int (include "gql-jobs.jobTimeout" .) }}
{{- $grace := .Values.worker.terminationGracePeriodSeconds }}
{{- if kindIs "invalid" $grace }}
{{- add $timeout 60 }}
{{- else if le (int $grace) $timeout }}
{{- fail (printf "worker.terminationGracePeriodSeconds (%d) must exceed the job timeout (%d s)" (int $grace) $timeout) }}
{{- else }}
{{- int $grace }}
{{- end }}
{{- end }}

{{/* REDIS_URL of plain Redis; the password is escaped for the URL. */}}
{{- define "gql-jobs.redisUrl" -}}
{{- $r := .Values.redis }}
{{- $auth := "" }}
{{- if $r.password }}
{{- $auth = printf "%s:%s@" (urlquery $r.username) (urlquery $r.password) }}
{{- else if $r.username }}
{{- $auth = printf "%s@" (urlquery $r.username) }}
{{- end }}
{{- printf "%s://%s%s:%d/%d" (ternary "rediss" "redis" $r.tls) $auth $r.host (int $r.port) (int $r.db) }}
{{- end }}

{{/* Whether KEDA needs the Redis passwords from the Secret. */}}
{{- define "gql-jobs.redisAuth" -}}
{{- if .Values.secrets.existingSecret }}
{{- ternary "true" "" .Values.secrets.existingSecretHasRedisPasswords }}
{{- else }}
{{- ternary "true" "" (or (not (empty .Values.redis.password)) (and .Values.redis.sentinel.enabled (not (empty .Values.redis.sentinel.password)))) }}
{{- end }}
{{- end }}

{{/* TCP ports the pods reach Redis on: the master's, and each sentinel's. */}}
{{- define "gql-jobs.redisPorts" -}}
{{- $ports := list (int .Values.redis.port) }}
{{- if .Values.redis.sentinel.enabled }}
{{- range .Values.redis.sentinel.addresses }}
{{- $ports = append $ports (ternary (int (regexReplaceAll "^.*:" . "")) 26379 (contains ":" .)) }}
{{- end }}
{{- end }}
{{- toJson (uniq $ports) }}
{{- end }}

{{/* Both Deployments read every setting from the ConfigMap and the Secret. */}}
{{- define "gql-jobs.envFrom" -}}
- configMapRef:
    name: {{ include "gql-jobs.fullname" . }}-settings
- secretRef:
    name: {{ include "gql-jobs.secretName" . }}
{{- end }}

{{/* Roll the pods when a setting changes. */}}
{{- define "gql-jobs.checksums" -}}
checksum/settings: {{ include (print .Template.BasePath "/configmap.yaml") . | sha256sum }}
checksum/secrets: {{ include (print .Template.BasePath "/secret.yaml") . | sha256sum }}
{{- end }}

{{/* Egress rules of both pods: DNS, and Redis on its ports: pass (list $ ports). */}}
{{- define "gql-jobs.egressToRedis" -}}
{{- $ := index . 0 -}}
# Name lookups.
- ports:
    - port: 53
      protocol: UDP
    - port: 53
      protocol: TCP
# Redis (and the sentinels), nothing else.
- ports:
    {{- range index . 1 }}
    - port: {{ . }}
      protocol: TCP
    {{- end }}
  {{- with $.Values.networkPolicy.redisTo }}
  to:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}
