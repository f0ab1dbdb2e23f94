{{/*
Names, labels and the few computations the templates share.
*/}}

{{- define "layers-webhooks.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The release's full name, at most 63 characters (a DNS label). */}}
{{- define "layers-webhooks.fullname" -}}
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

{{- define "layers-webhooks.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "layers-webhooks.selectorLabels" -}}
app.kubernetes.io/name: {{ include "layers-webhooks.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "layers-webhooks.labels" -}}
helm.sh/chart: {{ include "layers-webhooks.chart" . }}
{{ include "layers-webhooks.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: layers-webhooks
{{- end }}

{{- define "layers-webhooks.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "layers-webhooks.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "layers-webhooks.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* The two settings that may carry credentials: they live in a Secret, never the ConfigMap. */}}
{{- define "layers-webhooks.secretSettings" -}}
{{- list "WEBHOOKS_DATABASE_URL" "WEBHOOKS_ENCRYPTION_KEY" | toJson }}
{{- end }}

{{- define "layers-webhooks.secretName" -}}
{{- default (include "layers-webhooks.fullname" .) .Values.secrets.existingSecret }}
{{- end }}

{{- define "layers-webhooks.httpPort" -}}
{{- .Values.config.WEBHOOKS_HTTP_PORT | int }}
{{- end }}

{{/*
A WEBHOOKS_* duration in seconds, parsed as dispatcher/settings.py parse_duration does:
a bare number is seconds; otherwise a number with one of ms, s, m, h, d.
*/}}
{{- define "layers-webhooks.seconds" -}}
{{- $text := trim (toString .) }}
{{- $units := dict "ms" 0.001 "s" 1.0 "m" 60.0 "h" 3600.0 "d" 86400.0 }}
{{- if regexMatch "^[0-9]+(\\.[0-9]+)?$" $text }}
{{- $text | float64 }}
{{- else if regexMatch "^[0-9]+(\\.[0-9]+)?\\s*(ms|s|m|h|d)$" $text }}
{{- $number := regexFind "^[0-9]+(\\.[0-9]+)?" $text | float64 }}
{{- $unit := regexReplaceAll "^[0-9.]+\\s*" $text "" }}
{{- mulf $number (get $units $unit) }}
{{- else }}
{{- fail (printf "%q is not a duration (use e.g. 500ms, 5s, 5m, 2h, 5d)" $text) }}
{{- end }}
{{- end }}

{{/*
terminationGracePeriodSeconds: the preStop sleep, then the service's drain deadline
(WEBHOOKS_SHUTDOWN_TIMEOUT, rounded up), plus a margin for closing the store and Kafka.
*/}}
{{- define "layers-webhooks.terminationGracePeriodSeconds" -}}
{{- $drain := include "layers-webhooks.seconds" .Values.config.WEBHOOKS_SHUTDOWN_TIMEOUT | float64 | ceil | int }}
{{- $needed := add (int .Values.preStopSleepSeconds) $drain }}
{{- if eq (toString .Values.terminationGracePeriodSeconds) "" }}
{{- add $needed (int .Values.terminationGraceMarginSeconds) }}
{{- else }}
{{- $explicit := int .Values.terminationGracePeriodSeconds }}
{{- if le $explicit $needed }}
{{- fail (printf "terminationGracePeriodSeconds (%d) must exceed preStopSleepSeconds + WEBHOOKS_SHUTDOWN_TIMEOUT (%d s), or the kubelet kills pods mid-drain" $explicit $needed) }}
{{- end }}
{{- $explicit }}
{{- end }}
{{- end }}

{{- define "layers-webhooks.usesSqlite" -}}
{{- if and (not .Values.secrets.existingSecret) (hasPrefix "sqlite" (toString .Values.config.WEBHOOKS_DATABASE_URL)) }}true{{ end }}
{{- end }}

{{/*
Refuse, at render time, what `webhooks serve` would refuse at start (or silently get wrong).
*/}}
{{- define "layers-webhooks.validate" -}}
{{- $problems := list }}
{{- $config := .Values.config }}
{{- if not (trim $config.WEBHOOKS_KAFKA_BOOTSTRAP_SERVERS) }}
{{- $problems = append $problems "config.WEBHOOKS_KAFKA_BOOTSTRAP_SERVERS is required by `webhooks serve` (host:port,…)" }}
{{- end }}
{{- if not .Values.secrets.existingSecret }}
{{- $keys := trim $config.WEBHOOKS_ENCRYPTION_KEY }}
{{- if not $keys }}
{{- $problems = append $problems "config.WEBHOOKS_ENCRYPTION_KEY (or secrets.existingSecret) is required by `webhooks serve`: standard base64 of 32 random bytes, e.g. `openssl rand -base64 32`" }}
{{- end }}
{{- range $index, $key := splitList "," $keys }}
{{- if and $keys (ne (len (b64dec (trim $key))) 32) }}
{{- $problems = append $problems (printf "config.WEBHOOKS_ENCRYPTION_KEY: key #%d is not standard base64 of 32 bytes" (add1 $index)) }}
{{- end }}
{{- end }}
{{- end }}
{{- if and (include "layers-webhooks.usesSqlite" .) (or .Values.autoscaling.enabled (gt (int .Values.replicaCount) 1)) }}
{{- $problems = append $problems "a sqlite:// WEBHOOKS_DATABASE_URL is one node only: set replicaCount 1 and autoscaling.enabled false, or use postgresql://" }}
{{- end }}
{{- if $problems }}
{{- fail (printf "\n\nlayers-webhooks: invalid values:\n  - %s\n" (join "\n  - " $problems)) }}
{{- end }}
{{- end }}

{{/* Pod-level settings shared by the Deployment and the migration Job. */}}
{{- define "layers-webhooks.podCommon" -}}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
automountServiceAccountToken: false
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* The two secret settings as env entries, from the chart's Secret or existingSecret. */}}
{{- define "layers-webhooks.secretEnv" -}}
{{- $name := .secretName }}
{{- $root := .root }}
- name: WEBHOOKS_DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ $name }}
      key: {{ ternary $root.Values.secrets.databaseUrlKey "WEBHOOKS_DATABASE_URL" (not (empty $root.Values.secrets.existingSecret)) }}
- name: WEBHOOKS_ENCRYPTION_KEY
  valueFrom:
    secretKeyRef:
      name: {{ $name }}
      key: {{ ternary $root.Values.secrets.encryptionKeyKey "WEBHOOKS_ENCRYPTION_KEY" (not (empty $root.Values.secrets.existingSecret)) }}
{{- end }}

{{/* The writable paths: /tmp always, the working directory for the embedded SQLite store. */}}
{{- define "layers-webhooks.volumes" -}}
- name: tmp
  emptyDir:
    sizeLimit: {{ .Values.tmpSizeLimit }}
- name: data
  {{- if .Values.sqlite.existingClaim }}
  persistentVolumeClaim:
    claimName: {{ .Values.sqlite.existingClaim }}
  {{- else }}
  emptyDir:
    sizeLimit: {{ .Values.sqlite.sizeLimit }}
  {{- end }}
{{- end }}

{{- define "layers-webhooks.volumeMounts" -}}
- name: tmp
  mountPath: /tmp
- name: data
  mountPath: /var/lib/webhooks
{{- end }}
