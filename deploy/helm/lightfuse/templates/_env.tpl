{{/*
The container's environment, under Langfuse's variable names. Order matters where a value uses $(VAR):
Kubernetes expands only variables defined earlier in the list (DATABASE_PASSWORD before DATABASE_URL).
*/}}
{{- define "lightfuse.envVars" -}}
{{- $v := .Values -}}
# container runtimes set HOSTNAME to the pod name; Lightfuse binds to $HOSTNAME, so pin it to every address
- name: HOSTNAME
  value: "0.0.0.0"
- name: PORT
  value: {{ $v.service.port | toString | quote }}
- name: LIGHTFUSE_DATA_DIR
  value: /data
{{- include "lightfuse.env" (list "NEXTAUTH_URL" (include "lightfuse.nextauthUrl" .)) }}
{{- include "lightfuse.env" (list "LANGFUSE_LOG_LEVEL" $v.logging.level) }}
{{- include "lightfuse.env" (list "LANGFUSE_LOG_FORMAT" $v.logging.format) }}
{{- with (include "lightfuse.secretsName" .) }}
{{ include "lightfuse.secretEnv" (list "SALT" . $v.secrets.saltKey false) }}
{{ include "lightfuse.secretEnv" (list "ENCRYPTION_KEY" . $v.secrets.encryptionKeyKey false) }}
{{ include "lightfuse.secretEnv" (list "NEXTAUTH_SECRET" . $v.secrets.nextauthSecretKey false) }}
{{- end }}
{{- with $v.database.external }}
{{- if .enabled }}
{{- if .urlKey }}
{{ include "lightfuse.secretEnv" (list "DATABASE_URL" .existingSecret .urlKey false) }}
{{- else }}
{{ include "lightfuse.secretEnv" (list "DATABASE_PASSWORD" .existingSecret .passwordKey false) }}
- name: DATABASE_URL
  value: {{ printf "postgresql://%s:$(DATABASE_PASSWORD)@%s:%d/%s%s" .user .host (int .port) .database (ternary (printf "?%s" .args) "" (ne .args "")) | quote }}
{{- end }}
{{- end }}
{{- end }}
{{- /* S3: media (read by Lightfuse) and batch exports (not yet) share endpoint and credentials */}}
{{- $s3 := $v.s3 }}
{{- $families := list }}
{{- if $s3.media.bucket }}{{ $families = append $families (list "MEDIA_UPLOAD" $s3.media) }}{{ end }}
{{- if $s3.batchExport.enabled }}{{ $families = append $families (list "BATCH_EXPORT" $s3.batchExport) }}{{ end }}
{{- range $families }}
{{- $prefix := printf "LANGFUSE_S3_%s_" (index . 0) }}
{{- $family := index . 1 }}
{{- include "lightfuse.env" (list (print $prefix "BUCKET") $family.bucket) }}
{{- include "lightfuse.env" (list (print $prefix "PREFIX") $family.prefix) }}
{{- include "lightfuse.env" (list (print $prefix "REGION") $s3.region) }}
{{- include "lightfuse.env" (list (print $prefix "ENDPOINT") $s3.endpoint) }}
{{- include "lightfuse.env" (list (print $prefix "FORCE_PATH_STYLE") $s3.forcePathStyle) }}
{{- if $s3.existingSecret }}
{{ include "lightfuse.secretEnv" (list (print $prefix "ACCESS_KEY_ID") $s3.existingSecret $s3.accessKeyIdKey false) }}
{{ include "lightfuse.secretEnv" (list (print $prefix "SECRET_ACCESS_KEY") $s3.existingSecret $s3.secretAccessKeyKey false) }}
{{- end }}
{{- end }}
{{- include "lightfuse.env" (list "LANGFUSE_S3_MEDIA_MAX_CONTENT_LENGTH" $s3.media.maxContentLength) }}
{{- include "lightfuse.env" (list "LANGFUSE_S3_MEDIA_DOWNLOAD_URL_EXPIRY_SECONDS" $s3.media.downloadUrlExpirySeconds) }}
{{- if $s3.batchExport.enabled }}
- name: LANGFUSE_S3_BATCH_EXPORT_ENABLED
  value: "true"
{{- include "lightfuse.env" (list "LANGFUSE_S3_BATCH_EXPORT_EXTERNAL_ENDPOINT" $s3.batchExport.externalEndpoint) }}
{{- end }}
{{- with $v.redis }}
{{- if .enabled }}
{{- include "lightfuse.env" (list "REDIS_HOST" .host) }}
{{- include "lightfuse.env" (list "REDIS_PORT" .port) }}
{{- include "lightfuse.env" (list "REDIS_USERNAME" .username) }}
{{- include "lightfuse.env" (list "REDIS_KEY_PREFIX" .keyPrefix) }}
{{- include "lightfuse.env" (list "REDIS_TLS_ENABLED" .tls) }}
{{- if .existingSecret }}
{{ include "lightfuse.secretEnv" (list "REDIS_AUTH" .existingSecret .passwordKey false) }}
{{- end }}
{{- end }}
{{- end }}
{{- with $v.clickhouse }}
{{- if .enabled }}
{{- include "lightfuse.env" (list "CLICKHOUSE_URL" .url) }}
{{- include "lightfuse.env" (list "CLICKHOUSE_USER" .user) }}
{{- include "lightfuse.env" (list "CLICKHOUSE_DB" .database) }}
{{- include "lightfuse.env" (list "CLICKHOUSE_CLUSTER_ENABLED" .clusterEnabled) }}
{{- if .existingSecret }}
{{ include "lightfuse.secretEnv" (list "CLICKHOUSE_PASSWORD" .existingSecret .passwordKey false) }}
{{- end }}
{{- end }}
{{- end }}
{{- with $v.init }}
{{- include "lightfuse.env" (list "LANGFUSE_INIT_ORG_ID" .orgId) }}
{{- include "lightfuse.env" (list "LANGFUSE_INIT_ORG_NAME" .orgName) }}
{{- include "lightfuse.env" (list "LANGFUSE_INIT_PROJECT_ID" .projectId) }}
{{- include "lightfuse.env" (list "LANGFUSE_INIT_PROJECT_NAME" .projectName) }}
{{- include "lightfuse.env" (list "LANGFUSE_INIT_PROJECT_RETENTION" .projectRetention) }}
{{- include "lightfuse.env" (list "LANGFUSE_INIT_PROJECT_PUBLIC_KEY" .projectPublicKey) }}
{{- include "lightfuse.env" (list "LANGFUSE_INIT_USER_EMAIL" .userEmail) }}
{{- include "lightfuse.env" (list "LANGFUSE_INIT_USER_NAME" .userName) }}
{{- if .existingSecret }}
{{- if .projectSecretKeyKey }}
{{ include "lightfuse.secretEnv" (list "LANGFUSE_INIT_PROJECT_SECRET_KEY" .existingSecret .projectSecretKeyKey true) }}
{{- end }}
{{- if .userPasswordKey }}
{{ include "lightfuse.secretEnv" (list "LANGFUSE_INIT_USER_PASSWORD" .existingSecret .userPasswordKey true) }}
{{- end }}
{{- end }}
{{- end }}
{{- with $v.auth }}
{{- if .disableSignup }}
- name: AUTH_DISABLE_SIGNUP
  value: "true"
{{- end }}
{{- if .disableUsernamePassword }}
- name: AUTH_DISABLE_USERNAME_PASSWORD
  value: "true"
{{- end }}
{{- include "lightfuse.env" (list "AUTH_SESSION_MAX_AGE" .sessionMaxAge) }}
{{- include "lightfuse.env" (list "AUTH_DOMAINS_WITH_SSO_ENFORCEMENT" (join "," .domainsWithSsoEnforcement)) }}
{{- include "lightfuse.env" (list "AUTH_SSO_TIMEOUT" .ssoTimeoutMs) }}
{{- include "lightfuse.allowlistEnv" (list "LANGFUSE_SSO_DISCOVERY_WHITELISTED" .ssoDiscoveryAllowlist) }}
{{- with .newUserDefaults }}
{{- include "lightfuse.env" (list "LANGFUSE_DEFAULT_ORG_ID" (join "," .orgIds)) }}
{{- include "lightfuse.env" (list "LANGFUSE_DEFAULT_ORG_ROLE" .orgRole) }}
{{- include "lightfuse.env" (list "LANGFUSE_DEFAULT_PROJECT_ID" (join "," .projectIds)) }}
{{- include "lightfuse.env" (list "LANGFUSE_DEFAULT_PROJECT_ROLE" .projectRole) }}
{{- end }}
{{- include "lightfuse.env" (list "LIGHTFUSE_SSO_ROLE_CLAIM" .roleClaim) }}
{{- include "lightfuse.env" (list "LIGHTFUSE_SSO_ROLE_MAPPING" (join "," .roleMapping)) }}
{{- range .sso }}
{{- $p := printf "AUTH_%s_" .provider }}
{{- include "lightfuse.env" (list (print $p "CLIENT_ID") .clientId) }}
{{ include "lightfuse.secretEnv" (list (print $p "CLIENT_SECRET") .existingSecret (default "client-secret" .clientSecretKey) false) }}
{{- include "lightfuse.env" (list (print $p "ISSUER") .issuer) }}
{{- if .allowAccountLinking }}
- name: {{ print $p "ALLOW_ACCOUNT_LINKING" }}
  value: "true"
{{- end }}
{{- range $name, $value := .options }}
{{- include "lightfuse.env" (list (print $p $name) $value) }}
{{- end }}
{{- end }}
{{- end }}
{{- with $v.email }}
{{- include "lightfuse.env" (list "EMAIL_FROM_ADDRESS" .fromAddress) }}
{{- if .existingSecret }}
{{ include "lightfuse.secretEnv" (list "SMTP_CONNECTION_URL" .existingSecret .smtpUrlKey false) }}
{{- end }}
{{- end }}
{{- include "lightfuse.allowlistEnv" (list "LANGFUSE_WEBHOOK_WHITELISTED" $v.webhooks.allowlist) }}
{{- with $v.metrics }}
{{- include "lightfuse.env" (list "LIGHTFUSE_METRICS_PORT" .port) }}
{{- if .existingSecret }}
{{ include "lightfuse.secretEnv" (list "LIGHTFUSE_METRICS_TOKEN" .existingSecret .tokenKey false) }}
{{- end }}
{{- end }}
{{- if $v.otlpGrpc.enabled }}
{{- include "lightfuse.env" (list "LIGHTFUSE_OTLP_GRPC_PORT" $v.otlpGrpc.port) }}
{{- end }}
{{- with $v.tracing }}
{{- if .enabled }}
{{- include "lightfuse.env" (list "OTEL_EXPORTER_OTLP_ENDPOINT" .endpoint) }}
{{- include "lightfuse.env" (list "OTEL_SERVICE_NAME" .serviceName) }}
{{- include "lightfuse.env" (list "OTEL_TRACE_SAMPLING_RATIO" .samplingRatio) }}
{{- end }}
{{- end }}
{{- with $v.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* An outbound allow-list as <PREFIX>_HOST, _IPS and _IP_SEGMENTS (comma lists): (list PREFIX VALUES). */}}
{{- define "lightfuse.allowlistEnv" -}}
{{- $prefix := index . 0 }}
{{- with index . 1 }}
{{- include "lightfuse.env" (list (print $prefix "_HOST") (join "," .hosts)) }}
{{- include "lightfuse.env" (list (print $prefix "_IPS") (join "," .ips)) }}
{{- include "lightfuse.env" (list (print $prefix "_IP_SEGMENTS") (join "," .ipSegments)) }}
{{- end }}
{{- end }}
