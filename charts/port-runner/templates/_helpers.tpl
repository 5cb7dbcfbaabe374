{{/* Chart name, truncated for label values. */}}
{{- define "port-runner.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Fully qualified app name: the release name, unless it already contains the chart name. */}}
{{- define "port-runner.fullname" -}}
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

{{- define "port-runner.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "port-runner.selectorLabels" -}}
app.kubernetes.io/name: {{ include "port-runner.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "port-runner.labels" -}}
helm.sh/chart: {{ include "port-runner.chart" . }}
{{ include "port-runner.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* The Secret holding PORT_CLIENT_ID, PORT_CLIENT_SECRET (and KAFKA_USERNAME, KAFKA_PASSWORD with own brokers). */}}
{{- define "port-runner.secretName" -}}
{{- default (include "port-runner.fullname" .) .Values.existingSecret -}}
{{- end -}}

{{- define "port-runner.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "port-runner.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The metrics port, from config.metrics.addr (":9464", "0.0.0.0:9464"); probes and the Service use it. */}}
{{- define "port-runner.metricsPort" -}}
{{- dig "metrics" "addr" ":9464" .Values.config | splitList ":" | last -}}
{{- end -}}
