{{- define "cilium.labels" -}}
app.kubernetes.io/part-of: cilium
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version | replace "+" "_" }}
{{- end -}}
{{- define "cilium.tag" -}}
{{- default (printf "v%s" .root.Chart.AppVersion) .tag -}}
{{- end -}}
