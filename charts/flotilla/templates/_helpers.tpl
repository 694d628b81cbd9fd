{{/* Names, labels and the decisions several templates share. */}}

{{- define "flotilla.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The release's full name: <release>-flotilla, or the release name when it already says flotilla. */}}
{{- define "flotilla.fullname" -}}
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

{{/* The hub's objects: <fullname>-hub. */}}
{{- define "flotilla.hubName" -}}
{{- printf "%s-hub" (include "flotilla.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "flotilla.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels that select the hub's pods; never change them between releases. */}}
{{- define "flotilla.selectorLabels" -}}
app.kubernetes.io/name: {{ include "flotilla.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: hub
{{- end -}}

{{- define "flotilla.labels" -}}
helm.sh/chart: {{ include "flotilla.chart" . }}
{{ include "flotilla.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: flotilla
{{- end -}}

{{- define "flotilla.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "flotilla.hubName" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name must name an existing ServiceAccount when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* "true" when the hubs elect a leader: always with more than one replica, else when forced. */}}
{{- define "flotilla.leaderElect" -}}
{{- if or (gt (int .Values.replicas) 1) .Values.leaderElection.force -}}
true
{{- end -}}
{{- end -}}

{{/* The --controllers list, from a list or a comma-separated string. */}}
{{- define "flotilla.controllers" -}}
{{- if kindIs "slice" .Values.controllers -}}
{{- join "," .Values.controllers -}}
{{- else -}}
{{- .Values.controllers -}}
{{- end -}}
{{- end -}}

{{/* The namespace of member credentials and heartbeat Leases: fixed in the hub's code. */}}
{{- define "flotilla.clusterNamespace" -}}
flotilla-cluster
{{- end -}}

{{/* Every CRD the chart ships (crds/), by name: what --install-crds may write. */}}
{{- define "flotilla.crdNames" -}}
{{- range $path, $_ := .Files.Glob "crds/*.yaml" }}
{{- $parts := splitList "_" (base $path | trimSuffix ".yaml") }}
- {{ printf "%s.%s" (last $parts) (first $parts) }}
{{- end }}
{{- end -}}
