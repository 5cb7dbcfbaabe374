{{/*
port-runner.alertRules is the alerts as a Prometheus rules file (`groups:`), which is also a
PrometheusRule's spec. Each rule is switchable and its for, threshold and labels come from
prometheusRule.rules (values.yaml); files/alerts/port-runner.rules.yaml is what the defaults
render (a chart test keeps it so), and test/monitoring evaluates every rule of that file on
sample series. Every replica exports every partition's consumer_lag (read from the broker),
so lag is taken with max by partition, never summed across replicas.
*/}}
{{- define "port-runner.alertRules" -}}
{{- $rules := .Values.prometheusRule.rules -}}
{{- $name := include "port-runner.fullname" . -}}
{{- $ns := .Release.Namespace -}}
groups:
  - name: port-runner
    rules:
{{- with $rules.PortRunnerDown }}
{{- $sel := .selector | default (printf "namespace=%q, job=~%q" $ns (printf "%s|%s/%s" $name $ns $name)) }}
{{- /* absent() of a comparison has no labels: the release's namespace is added for routing. */}}
{{- include "port-runner.alert" (dict "root" $ "name" "PortRunnerDown" "rule" . "labels" (dict "namespace" $ns)
  "expr" (printf "absent(up{%s} == 1)" $sel)
  "summary" (printf "No port-runner replica of %s/%s has been up for %s: none is scraped, or every one is down" $ns $name .for)) }}
{{- end }}
{{- with $rules.PortRunnerConsumerLagGrowing }}
{{- include "port-runner.alert" (dict "root" $ "name" "PortRunnerConsumerLagGrowing" "rule" .
  "expr" (printf "sum by (namespace, job, topic) (max by (namespace, job, topic, partition) (port_runner_consumer_lag)) > %v\nand\nsum by (namespace, job, topic) (max by (namespace, job, topic, partition) (deriv(port_runner_consumer_lag[10m]))) > 0" .threshold)
  "summary" (printf `port-runner has fallen behind on {{ $labels.topic }} for %s: {{ $value | humanize }} messages wait, and more every minute` .for)) }}
{{- end }}
{{- with $rules.PortRunnerOldestRunWaiting }}
{{- include "port-runner.alert" (dict "root" $ "name" "PortRunnerOldestRunWaiting" "rule" .
  "expr" (printf "max by (namespace, job, topic) (port_runner_consumer_lag_seconds) > %v" .threshold)
  "summary" `A run on {{ $labels.topic }} has waited {{ $value | humanizeDuration }} for its command to start`) }}
{{- end }}
{{- with $rules.PortRunnerFailureRatioHigh }}
{{- include "port-runner.alert" (dict "root" $ "name" "PortRunnerFailureRatioHigh" "rule" .
  "expr" (printf "(\n  sum by (namespace, job, action) (rate(port_runner_runs_total{result=\"failure\"}[15m]))\n  /\n  sum by (namespace, job, action) (rate(port_runner_runs_total[15m]))\n) > %v\nand\nsum by (namespace, job, action) (increase(port_runner_runs_total[15m])) >= %v" .threshold .minRuns)
  "summary" `{{ $value | humanizePercentage }} of the runs of {{ $labels.action }} failed over 15 minutes`) }}
{{- end }}
{{- with $rules.PortRunnerReplicaNotReady }}
{{- include "port-runner.alert" (dict "root" $ "name" "PortRunnerReplicaNotReady" "rule" .
  "expr" "max by (namespace, job, instance) (port_runner_ready) == 0"
  "summary" (printf `port-runner replica {{ $labels.instance }} has not been ready for %s` .for)) }}
{{- end }}
{{- with $rules.PortRunnerRateLimited }}
{{- include "port-runner.alert" (dict "root" $ "name" "PortRunnerRateLimited" "rule" .
  "expr" (printf "sum by (namespace, job) (rate(port_runner_port_requests_total{code=\"429\"}[5m])) > %v" .threshold)
  "summary" (printf `Port has answered 429 (rate limited) to port-runner for %s ({{ printf "%%.2f" $value }}/s)` .for)) }}
{{- end }}
{{- with $rules.PortRunnerRunsUnclosed }}
{{- include "port-runner.alert" (dict "root" $ "name" "PortRunnerRunsUnclosed" "rule" .
  "expr" (printf "sum by (namespace, job, instance) (increase(port_runner_runs_unclosed_total[30m])) > %v" .threshold)
  "summary" `Port refused to close {{ printf "%.0f" $value }} run(s) of {{ $labels.instance }} in 30 minutes, even with the minimal closing request; they stay open in Port`) }}
{{- end }}
{{- with $rules.PortRunnerClosingsWaiting }}
{{- include "port-runner.alert" (dict "root" $ "name" "PortRunnerClosingsWaiting" "rule" .
  "expr" (printf "max by (namespace, job, instance) (port_runner_runs_closing_oldest_seconds) > %v" .threshold)
  "summary" `A run on {{ $labels.instance }} ended {{ $value | humanizeDuration }} ago and Port still has not taken its termination`) }}
{{- end }}
{{- with $rules.PortRunnerBatchSkipped }}
{{- /* The runs of a skipped batch were never read: they did not run and stay open in Port. */}}
{{- include "port-runner.alert" (dict "root" $ "name" "PortRunnerBatchSkipped" "rule" .
  "expr" (printf "sum by (namespace, job, instance) (increase(port_runner_messages_total{outcome=\"skipped_batch\"}[30m])) > %v" .threshold)
  "summary" `port-runner {{ $labels.instance }} skipped {{ $value | humanize }} message(s) in a batch that does not decompress within kafka.maxDecompressBatchBytes; their runs did not run and stay open in Port`) }}
{{- end }}
{{- end -}}

{{/* port-runner.alert is one alerting rule (nothing when the rule is disabled). */}}
{{- define "port-runner.alert" -}}
{{- $p := .root.Values.prometheusRule -}}
{{- if .rule.enabled }}
      - alert: {{ .name }}
        expr: |
          {{- .expr | nindent 10 }}
        for: {{ .rule.for }}
        labels:
          {{- toYaml (merge (dict) (.rule.labels | default dict) ($p.alertLabels | default dict) (.labels | default dict)) | nindent 10 }}
        annotations:
          summary: {{ .summary | quote }}
          runbook_url: {{ printf "%s%s" $p.runbookBaseURL (lower .name) | quote }}
{{- end }}
{{- end -}}
