{{/* Names and labels. */}}
{{- define "lightfuse.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "lightfuse.fullname" -}}
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

{{- define "lightfuse.selectorLabels" -}}
app.kubernetes.io/name: {{ include "lightfuse.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: web
{{- end }}

{{- define "lightfuse.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "lightfuse.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "lightfuse.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "lightfuse.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "lightfuse.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* The Secret that holds SALT / ENCRYPTION_KEY / NEXTAUTH_SECRET, or "" when none is used. */}}
{{- define "lightfuse.secretsName" -}}
{{- if .Values.secrets.existingSecret }}
{{- .Values.secrets.existingSecret }}
{{- else if .Values.secrets.generate }}
{{- printf "%s-secrets" (include "lightfuse.fullname" .) }}
{{- end }}
{{- end }}

{{/* Whether the data directory is a PersistentVolumeClaim (then rollouts must be Recreate: ReadWriteOnce). */}}
{{- define "lightfuse.usesClaim" -}}
{{- if and .Values.persistence.enabled (or (not .Values.database.external.enabled) (eq (int .Values.replicaCount) 1)) }}true{{- end }}
{{- end }}

{{- define "lightfuse.claimName" -}}
{{- default (printf "%s-data" (include "lightfuse.fullname" .)) .Values.persistence.existingClaim }}
{{- end }}

{{/* NEXTAUTH_URL: the value, else the first Ingress / HTTPRoute host. */}}
{{- define "lightfuse.nextauthUrl" -}}
{{- if .Values.nextauthUrl }}
{{- .Values.nextauthUrl }}
{{- else if and .Values.ingress.enabled .Values.ingress.hosts }}
{{- $host := (first .Values.ingress.hosts).host }}
{{- $tls := false }}
{{- range .Values.ingress.tls }}{{ if has $host .hosts }}{{ $tls = true }}{{ end }}{{ end }}
{{- printf "%s://%s" (ternary "https" "http" $tls) $host }}
{{- else if and .Values.httpRoute.enabled .Values.httpRoute.hostnames }}
{{- printf "https://%s" (first .Values.httpRoute.hostnames) }}
{{- end }}
{{- end }}

{{/* A literal environment variable; skipped when the value is empty or null. */}}
{{- define "lightfuse.env" -}}
{{- $value := index . 1 }}
{{- if or (kindIs "bool" $value) (and (not (kindIs "invalid" $value)) (ne (toString $value) "")) }}
- name: {{ index . 0 }}
  value: {{ toString $value | quote }}
{{- end }}
{{- end }}

{{/* An environment variable from a Secret key: (list NAME SECRET KEY OPTIONAL). */}}
{{- define "lightfuse.secretEnv" -}}
- name: {{ index . 0 }}
  valueFrom:
    secretKeyRef:
      name: {{ index . 1 | quote }}
      key: {{ index . 2 | quote }}
      {{- if index . 3 }}
      optional: true
      {{- end }}
{{- end }}
