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
Common labels: every object's, with commonLabels.
*/}}
{{- define "metrics-app.labels" -}}
helm.sh/chart: {{ include "metrics-app.chart" . }}
{{ include "metrics-app.podLabels" . }}
{{- end }}

{{/*
The pod template's labels: the common labels without helm.sh/chart, so that
a chart version bump alone does not change the template (and restart pods,
throwing away the governed buffer).  podLabels are added by the Deployment.
*/}}
{{- define "metrics-app.podLabels" -}}
{{ include "metrics-app.selectorLabels" . }}
{{- if .Chart.AppVersion }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
The image reference: [registry/]repository, then @digest when set, else
:tag (the chart's appVersion by default).
*/}}
{{- define "metrics-app.image" -}}
{{- $repo := .Values.image.repository }}
{{- with .Values.image.registry }}{{ $repo = printf "%s/%s" . $repo }}{{ end }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" $repo .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" $repo (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}
{{- end }}

{{/*
true when Prometheus finds the pods through the Operator (ServiceMonitor or
PodMonitor): the prometheus.io/* annotations would then make a second
annotation-based job scrape them too.
*/}}
{{- define "metrics-app.operatorScrape" -}}
{{- if or .Values.serviceMonitor.enabled .Values.podMonitor.enabled }}true{{ end }}
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
