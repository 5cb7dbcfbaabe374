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

{{/* The image reference: by digest when image.digest is set, else by tag (default appVersion). */}}
{{- define "port-runner.image" -}}
{{- $tag := .Values.image.tag | default .Chart.AppVersion -}}
{{- if .Values.image.digest -}}
{{- printf "%s:%s@%s" .Values.image.repository $tag .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository $tag -}}
{{- end -}}
{{- end -}}

{{/*
durationSeconds reads a Go duration ("60s", "1m30s", "10m") as seconds. The agent's
default (60s) stands for an unset or zero value; a ${VAR} reference, which only the agent
can expand, gives "" (not checked).
*/}}
{{- define "port-runner.durationSeconds" -}}
{{- $d := toString . -}}
{{- if or (eq $d "") (eq $d "0") (eq $d "<nil>") -}}
60
{{- else if regexMatch "^([0-9]+(\\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$" $d -}}
{{- $units := dict "h" 3600.0 "m" 60.0 "s" 1.0 "ms" 0.001 "us" 0.000001 "µs" 0.000001 "ns" 0.000000001 -}}
{{- $total := 0.0 -}}
{{- range regexFindAll "[0-9]+(\\.[0-9]+)?(ns|us|µs|ms|s|m|h)" $d -1 -}}
{{- $num := regexFind "^[0-9]+(\\.[0-9]+)?" . | float64 -}}
{{- $unit := regexReplaceAll "^[0-9]+(\\.[0-9]+)?" . "" -}}
{{- $total = addf $total (mulf $num (get $units $unit)) -}}
{{- end -}}
{{- $total -}}
{{- end -}}
{{- end -}}

{{/*
port-runner.validate fails the render with a message for values that would install an
agent that cannot start or cannot drain. The schema checks shapes; these need two values
at once. Included by the Deployment.
*/}}
{{- define "port-runner.validate" -}}
{{- $cfg := .Values.config -}}
{{- if not .Values.existingSecret -}}
{{- $need := list "PORT_CLIENT_ID" "PORT_CLIENT_SECRET" -}}
{{- if dig "kafka" "sasl" "mechanism" "" $cfg -}}
{{- $need = concat $need (list "KAFKA_USERNAME" "KAFKA_PASSWORD") -}}
{{- end -}}
{{- range $need -}}
{{- if not (index $.Values.secretEnv .) -}}
{{- fail (printf "secretEnv.%s is empty and existingSecret is not set: set existingSecret to a Secret holding %s, or set secretEnv.%s" . (join ", " $need) .) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- if not $cfg.actions -}}
{{- fail "config.actions is empty: list your actions (by their identifier in Port) with their commands; deploy/values-demo.yaml has one" -}}
{{- end -}}
{{- if and (eq (toString (dig "port" "orgID" "" $cfg)) "${PORT_ORG_ID}") (not .Values.env.PORT_ORG_ID) -}}
{{- fail "env.PORT_ORG_ID is empty: set it to your Port organization id (config.port.orgID reads it)" -}}
{{- end -}}
{{- if and (eq (toString (dig "kafka" "brokers" "" $cfg)) "${KAFKA_BROKERS}") (not .Values.env.KAFKA_BROKERS) -}}
{{- fail "env.KAFKA_BROKERS is empty: set it to the brokers Port gave you, comma-separated (config.kafka.brokers reads it), or remove config.kafka.brokers to get them from Port" -}}
{{- end -}}
{{- $shutdown := include "port-runner.durationSeconds" (dig "executor" "shutdownTimeout" "" $cfg) -}}
{{- if $shutdown -}}
{{- $min := addf (float64 $shutdown) 40.0 -}}
{{- if le (float64 .Values.terminationGracePeriodSeconds) $min -}}
{{- fail (printf "terminationGracePeriodSeconds (%v) must exceed config.executor.shutdownTimeout (%vs) + 40s for closing cancelled runs and the final commit: set it above %v" .Values.terminationGracePeriodSeconds $shutdown $min) -}}
{{- end -}}
{{- end -}}
{{- if and .Values.autoscaling.keda.enabled .Values.autoscaling.hpa.enabled -}}
{{- fail "autoscaling.keda.enabled and autoscaling.hpa.enabled: choose one (KEDA makes its own HPA)" -}}
{{- end -}}
{{- if and .Values.autoscaling.keda.enabled (eq (toString (dig "transport" "kafka" $cfg)) "polling") -}}
{{- fail "autoscaling.keda scales on the Kafka lag, which config.transport: polling has none of: use autoscaling.hpa (runs in flight) instead" -}}
{{- end -}}
{{- if .Values.autoscaling.keda.enabled -}}
{{- $_ := required "autoscaling.keda.prometheus.serverAddress is required with autoscaling.keda.enabled: the Prometheus that scrapes port-runner" .Values.autoscaling.keda.prometheus.serverAddress -}}
{{- end -}}
{{- if and .Values.rbac.create (not (and .Values.serviceAccount.create .Values.serviceAccount.automountServiceAccountToken)) -}}
{{- fail "rbac.create needs serviceAccount.create=true and serviceAccount.automountServiceAccountToken=true: the Role is bound to the chart's ServiceAccount, whose token the scripts use" -}}
{{- end -}}
{{- end -}}

{{/* Where credentialsAsFiles mounts the credentials Secret. */}}
{{- define "port-runner.credentialsDir" -}}
/etc/port-runner-credentials
{{- end -}}

{{/*
port-runner.config is the agent's config as the ConfigMap holds it: .Values.config, with
credentialsAsFiles the secrets' ${VAR}s replaced by the files of the mounted Secret.
*/}}
{{- define "port-runner.config" -}}
{{- $cfg := deepCopy .Values.config -}}
{{- if eq .Values.isolation.mode "runAs" -}}
{{- $exec := get $cfg "executor" | default dict -}}
{{- $_ := set $exec "runAs" .Values.isolation.runAsUIDs -}}
{{- $_ = set $cfg "executor" $exec -}}
{{- end -}}
{{- if .Values.credentialsAsFiles -}}
{{- $dir := include "port-runner.credentialsDir" . -}}
{{- /* The whole mounted Secret stays out of every sandboxed command's reach. */ -}}
{{- $exec := get $cfg "executor" | default dict -}}
{{- $_ := set $exec "private" (append (get $exec "private" | default list) $dir) -}}
{{- $_ = set $cfg "executor" $exec -}}
{{- $port := get $cfg "port" | default dict -}}
{{- $_ = unset $port "clientSecret" -}}
{{- $_ = set $port "clientSecretFile" (printf "%s/PORT_CLIENT_SECRET" $dir) -}}
{{- $_ = set $cfg "port" $port -}}
{{- $sasl := dig "kafka" "sasl" dict $cfg -}}
{{- if get $sasl "mechanism" -}}
{{- $_ = unset $sasl "password" -}}
{{- $_ = set $sasl "passwordFile" (printf "%s/KAFKA_PASSWORD" $dir) -}}
{{- end -}}
{{- end -}}
{{- toYaml $cfg -}}
{{- end -}}

{{/*
port-runner.securityContext is the agent container's: .Values.securityContext, and with
isolation.mode runAs root with only the capabilities a uid per run needs (Pod Security
baseline).
*/}}
{{- define "port-runner.securityContext" -}}
{{- $sc := deepCopy (.Values.securityContext | default dict) -}}
{{- if eq .Values.isolation.mode "runAs" -}}
{{- $_ := set $sc "runAsUser" 0 -}}
{{- $_ = set $sc "runAsGroup" 0 -}}
{{- $_ = set $sc "runAsNonRoot" false -}}
{{- $_ = set $sc "capabilities" (dict "drop" (list "ALL") "add" (list "CHOWN" "DAC_OVERRIDE" "FOWNER" "KILL" "SETGID" "SETUID")) -}}
{{- end -}}
{{- toYaml $sc -}}
{{- end -}}
