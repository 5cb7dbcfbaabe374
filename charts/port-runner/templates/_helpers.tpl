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
{{- $grace := .Values.terminationGracePeriodSeconds -}}
{{- if and $shutdown (not (kindIs "invalid" $grace)) -}}
{{- $min := addf (float64 $shutdown) 80.0 -}}
{{- if lt (float64 $grace) $min -}}
{{- fail (printf "terminationGracePeriodSeconds (%v) must be at least config.executor.shutdownTimeout (%vs) + 80s (the kill grace, the closing budget, the exit): set it to %v or more, or leave it empty to have it derived" $grace $shutdown (ceil $min)) -}}
{{- end -}}
{{- end -}}
{{- if and (not $shutdown) (kindIs "invalid" $grace) -}}
{{- fail "config.executor.shutdownTimeout is a ${VAR} the chart cannot read, so it cannot derive terminationGracePeriodSeconds: set terminationGracePeriodSeconds to that timeout + 80s or more" -}}
{{- end -}}
{{- if and .Values.autoscaling.keda.enabled .Values.autoscaling.hpa.enabled -}}
{{- fail "autoscaling.keda.enabled and autoscaling.hpa.enabled: choose one (KEDA makes its own HPA)" -}}
{{- end -}}
{{- include "port-runner.validateKeda" . -}}
{{- if and .Values.customCA.secretName .Values.customCA.configMapName -}}
{{- fail "customCA.secretName and customCA.configMapName are both set: the CA comes from one of them" -}}
{{- end -}}
{{- if and .Values.rbac.create (not (and .Values.serviceAccount.create .Values.serviceAccount.automountServiceAccountToken)) -}}
{{- fail "rbac.create needs serviceAccount.create=true and serviceAccount.automountServiceAccountToken=true: the Role is bound to the chart's ServiceAccount, whose token the scripts use" -}}
{{- end -}}
{{- end -}}

{{/*
terminationGracePeriodSeconds: the value when set, else derived from the drain (README
"Delivery"): executor.shutdownTimeout, then the 10s kill grace, the 60s closing budget and
10s to exit. port-runner.validate checks both cases.
*/}}
{{- define "port-runner.terminationGracePeriodSeconds" -}}
{{- if kindIs "invalid" .Values.terminationGracePeriodSeconds -}}
{{- $shutdown := include "port-runner.durationSeconds" (dig "executor" "shutdownTimeout" "" .Values.config) -}}
{{- int (ceil (addf (float64 $shutdown) 80.0)) -}}
{{- else -}}
{{- .Values.terminationGracePeriodSeconds -}}
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
{{- if and (include "port-runner.customCA" .) (not (dig "port" "caFile" "" $cfg)) -}}
{{- $port := get $cfg "port" | default dict -}}
{{- $_ := set $port "caFile" (printf "%s/%s" (include "port-runner.customCADir" .) .Values.customCA.key) -}}
{{- $_ = set $cfg "port" $port -}}
{{- end -}}
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

{{/* Where customCA is mounted, and whether one is set ("true" or ""). */}}
{{- define "port-runner.customCADir" -}}
/etc/port-runner-ca
{{- end -}}

{{- define "port-runner.customCA" -}}
{{- if or .Values.customCA.secretName .Values.customCA.configMapName -}}true{{- end -}}
{{- end -}}

{{/*
port-runner.validateKeda: KEDA needs a trigger, and may scale to zero only with one that
sees the backlog while no agent runs (the Kafka scaler): the Prometheus trigger reads the lag
the agents themselves export, so at zero replicas it would read nothing and never scale up.
*/}}
{{- define "port-runner.validateKeda" -}}
{{- $k := .Values.autoscaling.keda -}}
{{- if $k.enabled -}}
{{- if not (or $k.prometheus.serverAddress $k.kafka.enabled) -}}
{{- fail "autoscaling.keda.prometheus.serverAddress is required with autoscaling.keda.enabled: the Prometheus that scrapes port-runner (or enable autoscaling.keda.kafka, KEDA's Kafka scaler)" -}}
{{- end -}}
{{- if and (eq (int $k.minReplicas) 0) (not $k.kafka.enabled) -}}
{{- fail "autoscaling.keda.minReplicas is 0 with only the Prometheus trigger: the lag it reads is exported by running agents, so at 0 replicas nothing would scale the Deployment back up; set minReplicas to 1 or more, or enable autoscaling.keda.kafka (KEDA reads the lag from the brokers)" -}}
{{- end -}}
{{- if and $k.prometheus.authModes (not $k.prometheus.authSecretName) -}}
{{- fail "autoscaling.keda.prometheus.authModes needs authSecretName: the Secret holding the keys of those modes" -}}
{{- end -}}
{{- if $k.kafka.enabled -}}
{{- $_ := required "autoscaling.keda.kafka.bootstrapServers is required with autoscaling.keda.kafka.enabled: KEDA connects to the brokers itself" $k.kafka.bootstrapServers -}}
{{- range list (include "port-runner.kedaTopic" .) (include "port-runner.kedaGroup" .) -}}
{{- if or (not .) (contains "${" .) -}}
{{- fail (printf "autoscaling.keda.kafka: the topic or group %q is not known to Helm (a ${VAR} only the agent expands): set autoscaling.keda.kafka.topic and consumerGroup" .) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* expandEnv replaces ${VAR} (and ${VAR:-default}) in .s by env's values, as the agent would with that environment. */}}
{{- define "port-runner.expandEnv" -}}
{{- $s := .s -}}
{{- range $name, $value := .env -}}
{{- $s = regexReplaceAll (printf "\\$\\{%s(:-[^}]*)?\\}" $name) $s (toString $value) -}}
{{- end -}}
{{- $s -}}
{{- end -}}

{{/* The topic and group KEDA's Kafka scaler reads: the agent's, with env's variables expanded. */}}
{{- define "port-runner.kedaTopic" -}}
{{- $k := .Values.autoscaling.keda.kafka -}}
{{- if $k.topic -}}{{ $k.topic }}{{- else -}}
{{- $t := dig "kafka" "topic" "" .Values.config | default (printf "%s.runs" (dig "port" "orgID" "" .Values.config)) -}}
{{- include "port-runner.expandEnv" (dict "s" $t "env" .Values.env) -}}
{{- end -}}
{{- end -}}

{{- define "port-runner.kedaGroup" -}}
{{- $k := .Values.autoscaling.keda.kafka -}}
{{- if $k.consumerGroup -}}{{ $k.consumerGroup }}{{- else -}}
{{- include "port-runner.expandEnv" (dict "s" (dig "kafka" "group" "" .Values.config) "env" .Values.env) -}}
{{- end -}}
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
