{{/* Names, labels and the settings shared by every service. */}}

{{- define "cadenza.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "cadenza.fullname" -}}
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

{{/* Name of one service's objects: <fullname>-<service>. Call with (dict "root" $ "svc" $svc). */}}
{{- define "cadenza.svcName" -}}
{{- printf "%s-%s" (include "cadenza.fullname" .root) .svc.name | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "cadenza.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "cadenza.labels" -}}
helm.sh/chart: {{ include "cadenza.chart" . }}
app.kubernetes.io/name: {{ include "cadenza.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: cadenza
{{- end }}

{{/* Selector labels of one service. Call with (dict "root" $ "svc" $svc). */}}
{{- define "cadenza.selectorLabels" -}}
app.kubernetes.io/name: {{ include "cadenza.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .svc.name }}
{{- end }}

{{- define "cadenza.svcLabels" -}}
{{ include "cadenza.labels" .root }}
app.kubernetes.io/component: {{ .svc.name }}
{{- end }}

{{- define "cadenza.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "cadenza.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "cadenza.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* The Secret holding auth token, Qdrant API key and SASL credentials. */}}
{{- define "cadenza.secretName" -}}
{{- default (printf "%s-secrets" (include "cadenza.fullname" .)) .Values.existingSecret }}
{{- end }}

{{- define "cadenza.qdrantUrl" -}}
{{- if .Values.qdrant.enabled }}
{{- printf "http://%s-qdrant:6334" .Release.Name }}
{{- else }}
{{- required "externalQdrant.url is required when qdrant.enabled is false" .Values.externalQdrant.url }}
{{- end }}
{{- end }}

{{- define "cadenza.qdrantApiKey" -}}
{{- if and .Values.qdrant.enabled (kindIs "string" .Values.qdrant.apiKey) }}
{{- .Values.qdrant.apiKey }}
{{- else }}
{{- .Values.externalQdrant.apiKey }}
{{- end }}
{{- end }}

{{- define "cadenza.kafkaSasl" -}}
{{- hasPrefix "SASL_" .Values.kafka.securityProtocol }}
{{- end }}

{{- define "cadenza.kafkaTls" -}}
{{- hasSuffix "SSL" .Values.kafka.securityProtocol }}
{{- end }}

{{/* librdkafka properties, comma separated (CADENZA_KAFKA_PROPERTIES). */}}
{{- define "cadenza.kafkaProperties" -}}
{{- $p := list (printf "security.protocol=%s" .Values.kafka.securityProtocol) }}
{{- if eq (include "cadenza.kafkaSasl" .) "true" }}
{{- $p = append $p (printf "sasl.mechanisms=%s" .Values.kafka.sasl.mechanism) }}
{{- end }}
{{- if .Values.kafka.caSecret }}
{{- $p = append $p "ssl.ca.location=/etc/cadenza/kafka-ca/ca.crt" }}
{{- end }}
{{- range $k, $v := .Values.kafka.extraProperties }}
{{- if or (contains "," (toString $v)) (contains "," $k) }}
{{- fail (printf "kafka.extraProperties.%s: values cannot contain a comma" $k) }}
{{- end }}
{{- $p = append $p (printf "%s=%v" $k $v) }}
{{- end }}
{{- join "," $p }}
{{- end }}

{{/* Is the Deployment's replica count owned by an autoscaler? */}}
{{- define "cadenza.autoscaled" -}}
{{- $svc := .svc }}
{{- if and $svc.hpa $svc.hpa.enabled }}true
{{- else if and .root.Values.keda.enabled $svc.keda }}true
{{- else }}false
{{- end }}
{{- end }}

{{- define "cadenza.validate" -}}
{{- $protocols := list "PLAINTEXT" "SSL" "SASL_PLAINTEXT" "SASL_SSL" }}
{{- if not (has .Values.kafka.securityProtocol $protocols) }}
{{- fail (printf "kafka.securityProtocol must be one of %s" (join ", " $protocols)) }}
{{- end }}
{{- if not (has .Values.blobs.type (list "pvc" "hostPath")) }}
{{- fail "blobs.type must be pvc or hostPath (an emptyDir cannot be shared between the ingest and feature-extraction pods)" }}
{{- end }}
{{- if and .Values.tls.enabled (not .Values.tls.secretName) }}
{{- fail "tls.enabled needs tls.secretName (a kubernetes.io/tls Secret)" }}
{{- end }}
{{- if lt (int .Values.kafka.topicPartitions) 1 }}
{{- fail "kafka.topicPartitions must be at least 1" }}
{{- end }}
{{- end }}
