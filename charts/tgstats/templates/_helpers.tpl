{{/*
Names, labels and the pieces every tgstats container shares.
*/}}

{{- define "tgstats.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name: <release>-<chart>, shortened to leave room for the suffixes
("-bot", "-migrate", "-session") inside the 63-character name limit.
*/}}
{{- define "tgstats.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 52 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "tgstats.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "tgstats.selectorLabels" -}}
app.kubernetes.io/name: {{ include "tgstats.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "tgstats.labels" -}}
helm.sh/chart: {{ include "tgstats.chart" . }}
{{ include "tgstats.selectorLabels" . }}
app.kubernetes.io/version: {{ include "tgstats.imageTag" . | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: tgstats
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "tgstats.annotations" -}}
{{- with .Values.commonAnnotations -}}
annotations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* The image tag defaults to the chart's appVersion, so a chart release pins an app release. */}}
{{- define "tgstats.imageTag" -}}
{{- .Values.image.tag | default .Chart.AppVersion | toString }}
{{- end }}

{{- define "tgstats.image" -}}
{{- $repository := .Values.image.repository }}
{{- if .Values.image.registry }}
{{- $repository = printf "%s/%s" .Values.image.registry .Values.image.repository }}
{{- end }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" $repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" $repository (include "tgstats.imageTag" .) }}
{{- end }}
{{- end }}

{{- define "tgstats.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "tgstats.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The Secret the containers read their secret settings from: the chart's own or an existing one. */}}
{{- define "tgstats.secretName" -}}
{{- default (include "tgstats.fullname" .) .Values.secrets.existingSecret }}
{{- end }}

{{/*
Secret settings: values key -> environment variable. One list, used by the
Secret, the validation below and the migration hook Secret.
*/}}
{{- define "tgstats.secretEnv" -}}
databaseUrl: DATABASE_URL
databaseReadUrl: DATABASE_READ_URL
redisUrl: REDIS_URL
telegramBotToken: TELEGRAM_BOT_TOKEN
telegramApiId: TELEGRAM_API_ID
telegramApiHash: TELEGRAM_API_HASH
adminApiToken: ADMIN_API_TOKEN
metricsToken: METRICS_TOKEN
sessionSecret: SESSION_SECRET
sentryDsn: SENTRY_DSN
{{- end }}

{{/*
Refuse value combinations that would deploy something broken. Rendered once,
from the ConfigMap template, so every install and upgrade passes through it.
*/}}
{{- define "tgstats.validate" -}}
{{- $secrets := .Values.secrets }}
{{- if $secrets.existingSecret }}
{{- range $key, $env := include "tgstats.secretEnv" . | fromYaml }}
{{- if index $secrets $key }}
{{- fail (printf "secrets.%s is set together with secrets.existingSecret: put %s into the existing Secret instead" $key $env) }}
{{- end }}
{{- end }}
{{- else if not $secrets.databaseUrl }}
{{- fail "secrets.databaseUrl is required (or secrets.existingSecret with a DATABASE_URL key): in Kubernetes tgstats needs an external PostgreSQL" }}
{{- end }}
{{- if and .Values.web.enabled (not $secrets.existingSecret) (not $secrets.redisUrl) (or .Values.web.autoscaling.enabled (gt (int .Values.web.replicaCount) 1)) }}
{{- fail "secrets.redisUrl is required with more than one web replica: the cache and rate limits must be shared" }}
{{- end }}
{{- range $key, $env := include "tgstats.secretEnv" . | fromYaml }}
{{- if hasKey $.Values.config $env }}
{{- fail (printf "config.%s is a secret: set secrets.%s (or put it in secrets.existingSecret)" $env $key) }}
{{- end }}
{{- end }}
{{- $autoscaling := .Values.web.autoscaling }}
{{- if and $autoscaling.enabled (not $autoscaling.targetCPUUtilizationPercentage) (not $autoscaling.targetMemoryUtilizationPercentage) }}
{{- fail "web.autoscaling needs targetCPUUtilizationPercentage or targetMemoryUtilizationPercentage" }}
{{- end }}
{{- $monitor := .Values.metrics.serviceMonitor }}
{{- if and $monitor.enabled $monitor.namespace (ne $monitor.namespace .Release.Namespace) (or .Values.secrets.metricsToken .Values.secrets.existingSecret) }}
{{- fail "metrics.serviceMonitor.namespace must be the release namespace when METRICS_TOKEN may be set: Prometheus Operator reads the token Secret from the ServiceMonitor's namespace" }}
{{- end }}
{{- if and .Values.metrics.serviceMonitor.enabled (not (eq (toString .Values.config.ENABLE_METRICS) "true")) }}
{{- fail "metrics.serviceMonitor.enabled needs config.ENABLE_METRICS \"true\"" }}
{{- end }}
{{- end }}

{{/* Environment shared by every tgstats container (web, bot, migrations). */}}
{{- define "tgstats.commonEnv" -}}
- name: TMPDIR
  value: /tmp
- name: MPLCONFIGDIR
  value: /tmp/matplotlib
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "tgstats.envFrom" -}}
- configMapRef:
    name: {{ include "tgstats.fullname" . }}
- secretRef:
    name: {{ include "tgstats.secretName" . }}
{{- with .Values.extraEnvFrom }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "tgstats.tmpVolume" -}}
- name: tmp
  emptyDir:
    {{- if .Values.tmpVolume.medium }}
    medium: {{ .Values.tmpVolume.medium }}
    {{- end }}
    {{- if .Values.tmpVolume.sizeLimit }}
    sizeLimit: {{ .Values.tmpVolume.sizeLimit }}
    {{- end }}
{{- end }}

{{/* Pod annotations: config and secret checksums roll the pods when settings change. */}}
{{- define "tgstats.podAnnotations" -}}
checksum/config: {{ include (print .Template.BasePath "/configmap.yaml") . | sha256sum }}
{{- if not .Values.secrets.existingSecret }}
checksum/secret: {{ include (print .Template.BasePath "/secret.yaml") . | sha256sum }}
{{- end }}
{{- if .Values.metrics.podAnnotations }}
prometheus.io/scrape: "true"
prometheus.io/path: /metrics
{{- end }}
{{- end }}
