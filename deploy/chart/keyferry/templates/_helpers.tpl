{{/* Chart name. */}}
{{- define "keyferry.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: the release name, prefixed with the chart name unless it already holds it. */}}
{{- define "keyferry.fullname" -}}
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

{{/* Namespace of the namespaced resources. */}}
{{- define "keyferry.namespace" -}}
{{- default .Release.Namespace .Values.namespaceOverride }}
{{- end }}

{{/* The one namespace served in scoped mode. */}}
{{- define "keyferry.scopedNamespace" -}}
{{- default (include "keyferry.namespace" .) .Values.scopedNamespace }}
{{- end }}

{{/* Labels of every resource. */}}
{{- define "keyferry.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "keyferry.selectorLabels" . }}
app.kubernetes.io/version: {{ include "keyferry.imageTag" . | replace "+" "_" | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Labels that select the operator's pods. */}}
{{- define "keyferry.selectorLabels" -}}
app.kubernetes.io/name: {{ include "keyferry.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* ServiceAccount name. */}}
{{- define "keyferry.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "keyferry.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* Image tag: a tag of digits only (a short commit hash) arrives as a number, and Helm's values files and stored values make it a float64 that toString would write as 5.104869e+06. */}}
{{- define "keyferry.imageTag" -}}
{{- $tag := .Values.image.tag | default .Chart.AppVersion }}
{{- if and (kindIs "float64" $tag) (eq $tag (floor $tag)) }}
{{- printf "%.0f" $tag }}
{{- else }}
{{- toString $tag }}
{{- end }}
{{- end }}

{{/* Image reference. */}}
{{- define "keyferry.image" -}}
{{- printf "%s:%s" .Values.image.repository (include "keyferry.imageTag" .) }}
{{- end }}

{{/* Whether ClusterSecretStores are served: not with scopedRBAC (a Role cannot grant cluster-scoped kinds). */}}
{{- define "keyferry.processClusterStore" -}}
{{- and .Values.processClusterStore (not .Values.scopedRBAC) }}
{{- end }}
{{/* Whether ClusterExternalSecrets are served: not with scopedRBAC, and not
when serving one namespace (a ClusterExternalSecret writes into many; the
operator turns its controller off with --namespace). */}}
{{- define "keyferry.processClusterExternalSecret" -}}
{{- and .Values.processClusterExternalSecret (not .Values.scopedRBAC) (not .Values.scopedNamespace) }}
{{- end }}
{{/* Whether ClusterPushSecrets are served: as ClusterExternalSecrets (a
ClusterPushSecret writes PushSecrets into many namespaces). */}}
{{- define "keyferry.processClusterPushSecret" -}}
{{- and .Values.processClusterPushSecret (not .Values.scopedRBAC) (not .Values.scopedNamespace) }}
{{- end }}

{{/* Annotations of every CRD: keep on uninstall (on by default) and crds.annotations. */}}
{{- define "keyferry.crdAnnotations" -}}
{{- $a := dict }}
{{- if .Values.crds.keep }}
{{- $_ := set $a "helm.sh/resource-policy" "keep" }}
{{- end }}
{{- with .Values.crds.annotations }}
{{- $a = merge (deepCopy .) $a }}
{{- end }}
{{- if $a }}
{{- toYaml $a }}
{{- end }}
{{- end }}

{{/* A security context value without its chart-only "enabled" key. */}}
{{- define "keyferry.securityContext" -}}
{{- toYaml (omit . "enabled") }}
{{- end }}

{{/* Whether to render the ServiceMonitor, following serviceMonitor.renderMode. */}}
{{- define "keyferry.renderServiceMonitor" -}}
{{- if .Values.serviceMonitor.enabled }}
{{- $has := .Capabilities.APIVersions.Has "monitoring.coreos.com/v1/ServiceMonitor" }}
{{- $mode := .Values.serviceMonitor.renderMode }}
{{- if eq $mode "alwaysRender" }}true
{{- else if $has }}true
{{- else if eq $mode "failIfMissing" }}
{{- fail "serviceMonitor.enabled: the cluster does not serve monitoring.coreos.com/v1 ServiceMonitor (install the Prometheus Operator, or set serviceMonitor.renderMode)" }}
{{- end }}
{{- end }}
{{- end }}

{{/* Sanity checks of value combinations that cannot work. */}}
{{- define "keyferry.validate" -}}
{{- if and (gt (int .Values.replicaCount) 1) (not .Values.leaderElect) }}
{{- fail "replicaCount > 1 needs leaderElect: true, or every replica would write the same Secrets" }}
{{- end }}
{{- end }}
