{{/* Name of the release's objects: the release name, with the chart name unless it contains it. */}}
{{- define "ha.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "ha.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "ha.labels" -}}
{{ include "ha.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "ha.secretName" -}}
{{- .Values.auth.existingSecret | default (printf "%s-auth" (include "ha.fullname" .)) -}}
{{- end -}}

{{- define "ha.headless" -}}
{{- printf "%s-headless" (include "ha.fullname" .) -}}
{{- end -}}

{{/* Route URLs of every pod, through the headless Service (stable names of the StatefulSet). */}}
{{- define "ha.routes" -}}
{{- $routes := list -}}
{{- range $i := until (int .Values.replicaCount) -}}
{{- $routes = append $routes (printf "nats://%s-%d.%s.%s.svc:%d" (include "ha.fullname" $) $i (include "ha.headless" $) $.Release.Namespace (int $.Values.ports.natsCluster)) -}}
{{- end -}}
{{- join "," $routes -}}
{{- end -}}

{{- define "ha.interceptorConfigMap" -}}
{{- .Values.interceptor.existingConfigMap | default (printf "%s-interceptor" (include "ha.fullname" .)) -}}
{{- end -}}
