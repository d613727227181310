{{/* Names */}}
{{- define "stvs.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "stvs.fullname" -}}
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

{{/* The name of one service's objects, <fullname>-<service>: (list $ "registry") */}}
{{- define "stvs.serviceName" -}}
{{- $root := index . 0 -}}
{{- printf "%s-%s" (include "stvs.fullname" $root | trunc 50 | trimSuffix "-") (index . 1) -}}
{{- end -}}

{{- define "stvs.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "stvs.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: stvs
{{- end -}}

{{/* Selector labels of one service: (list $ "registry") */}}
{{- define "stvs.selectorLabels" -}}
{{- $root := index . 0 -}}
app.kubernetes.io/name: {{ include "stvs.name" $root }}
app.kubernetes.io/instance: {{ $root.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{/* One service's values: serviceDefaults with its own entry merged over them: (list $ "registry") */}}
{{- define "stvs.serviceValues" -}}
{{- $root := index . 0 -}}
{{- $own := index $root.Values.services (index . 1) | default dict -}}
{{- toYaml (mergeOverwrite (deepCopy $root.Values.serviceDefaults) (deepCopy $own)) -}}
{{- end -}}

{{- define "stvs.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "stvs.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "stvs.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* Which service reads which secret, and how a missing one is generated (token: text; key32: 32 bytes,
     URL-safe base64; none: optional, left unset). */}}
{{- define "stvs.secretSpecs" -}}
STVS_INTERNAL_TOKEN: { services: [registry, activities, reporting, notifier, gateway], generate: token }
STVS_JWT_SECRET: { services: [gateway], generate: token }
STVS_ID_ENCRYPTION_KEY: { services: [registry], generate: key32 }
STVS_ID_HASH_KEY: { services: [registry], generate: token }
STVS_CHECKIN_SECRET: { services: [activities], generate: token }
STVS_CERTIFICATE_SECRET: { services: [reporting], generate: token }
STVS_WEBHOOK_SECRET_KEY: { services: [notifier], generate: key32 }
STVS_SMTP_PASSWORD: { services: [notifier], generate: none }
{{- end -}}

{{- define "stvs.secretName" -}}
{{- printf "%s-secrets" (include "stvs.fullname" .) -}}
{{- end -}}

{{- define "stvs.kafkaName" -}}
{{- default (include "stvs.fullname" .) .Values.kafka.name -}}
{{- end -}}

{{- define "stvs.kafkaBootstrap" -}}
{{- if .Values.kafka.enabled -}}
{{- printf "%s-kafka-bootstrap:9092" (include "stvs.kafkaName" .) -}}
{{- else -}}
{{- required "kafka.bootstrap is required when kafka.enabled is false" .Values.kafka.bootstrap -}}
{{- end -}}
{{- end -}}

{{- define "stvs.mongoName" -}}
{{- default (printf "%s-mongodb" (include "stvs.fullname" .)) .Values.mongodb.name -}}
{{- end -}}

{{/* The Secret the operator writes the services' connection string into (key connectionString.standard). */}}
{{- define "stvs.mongoConnectionSecret" -}}
{{- printf "%s-connection" (include "stvs.mongoName" .) -}}
{{- end -}}


{{/* A topic's name in the cluster (STVS_NAMESPACE prefix) and a valid Kubernetes name for its KafkaTopic. */}}
{{- define "stvs.topicName" -}}
{{- $root := index . 0 -}}
{{- $ns := $root.Values.config.STVS_NAMESPACE | default "" -}}
{{- if $ns -}}{{ printf "%s.%s" $ns (index . 1) }}{{- else -}}{{ index . 1 }}{{- end -}}
{{- end -}}

{{/* Settings the chart derives itself: a value of config or env never overrides them. */}}
{{- define "stvs.derivedEnv" -}}
[STVS_PRODUCTION, STVS_HTTP_HOST, STVS_HTTP_PORT, STVS_KAFKA_BOOTSTRAP, STVS_MONGO_URL, STVS_TOPIC_PARTITIONS,
 STVS_TOPIC_REPLICATION, STVS_DLQ_RETENTION_DAYS, STVS_REGISTRY_URL, STVS_ACTIVITIES_URL, STVS_REPORTING_URL,
 STVS_NOTIFIER_URL, STVS_CLOCK_START, STVS_CLOCK_ANCHOR]
{{- end -}}
