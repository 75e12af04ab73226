{{/*
Names and labels shared by every template of the chart.
*/}}

{{/*
Expand the name of the chart.
*/}}
{{- define "metrics-app.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Create a default fully qualified app name, truncated to 63 characters (some
Kubernetes name fields are limited to this).  If the release name contains
the chart name it is used as the full name.
*/}}
{{- define "metrics-app.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Chart name and version as used by the chart label.
*/}}
{{- define "metrics-app.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Common labels
*/}}
{{- define "metrics-app.labels" -}}
helm.sh/chart: {{ include "metrics-app.chart" . }}
{{ include "metrics-app.selectorLabels" . }}
{{- if .Chart.AppVersion }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/*
Selector labels
*/}}
{{- define "metrics-app.selectorLabels" -}}
app.kubernetes.io/name: {{ include "metrics-app.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
The name of the service account to use.
*/}}
{{- define "metrics-app.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "metrics-app.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
Where the policy ConfigMap is mounted, and the policy file in it.  governord
watches this directory, so the kubelet's update of the volume reloads it.
*/}}
{{- define "metrics-app.policyDir" -}}
/etc/governor
{{- end }}

{{- define "metrics-app.policyFile" -}}
{{ include "metrics-app.policyDir" . }}/policy.ini
{{- end }}

{{/*
The --counter URL: memory:, file:PATH, or the Redis URL (the bundled Redis's
Service when counter.redis.url is empty).
*/}}
{{- define "metrics-app.counterUrl" -}}
{{- if eq .Values.counter.store "file" -}}
file:{{ .Values.counter.file.path }}
{{- else if eq .Values.counter.store "redis" -}}
{{- .Values.counter.redis.url | default (printf "redis://%s-redis:6379" (include "metrics-app.fullname" .)) -}}
{{- else -}}
memory:
{{- end -}}
{{- end }}

{{/*
The bundled Redis's selector: a name of its own, so that neither governord's
Service nor its Deployment selects the Redis pod.
*/}}
{{- define "metrics-app.redisSelectorLabels" -}}
app.kubernetes.io/name: {{ include "metrics-app.name" . }}-redis
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: counter-redis
{{- end }}
