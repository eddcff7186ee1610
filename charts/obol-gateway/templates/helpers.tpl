{{/*
Named templates of the obol-gateway chart.

This file is helpers.tpl, not the usual _helpers.tpl: obol embeds charts/ into its binary with
go:embed, which leaves out files whose names start with "_" or ".", and every stack repo gets the
embedded copy. It renders to nothing, so Helm installs no manifest from it.
*/}}

{{/* The chart's name, for the app.kubernetes.io/name label. */}}
{{- define "obol-gateway.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
The name of the Deployment, Service, ConfigMap and HTTPRoute: "<fullnameOverride or release
name>-gateway". The suffix keeps them clear of an upstream Service named like the offer (obol
sell http weather --upstream weather). Offer names are at most 53 characters, so the name fits
the 63 of a Service name.
*/}}
{{- define "obol-gateway.fullname" -}}
{{- $base := default .Release.Name .Values.fullnameOverride | trunc 55 | trimSuffix "-" -}}
{{- printf "%s-gateway" $base -}}
{{- end -}}

{{/* The image tag: image.tag, else the chart's appVersion. */}}
{{- define "obol-gateway.tag" -}}
{{- .Values.image.tag | default .Chart.AppVersion -}}
{{- end -}}

{{/* The image reference: repository:tag, pinned with @digest when image.digest is set. */}}
{{- define "obol-gateway.image" -}}
{{- $ref := printf "%s:%s" .Values.image.repository (include "obol-gateway.tag" .) -}}
{{- if .Values.image.digest -}}
{{- $ref = printf "%s@%s" $ref .Values.image.digest -}}
{{- end -}}
{{- $ref -}}
{{- end -}}

{{/* Selector labels: stable for the life of a release (a Deployment's selector is immutable). */}}
{{- define "obol-gateway.selectorLabels" -}}
app.kubernetes.io/name: {{ include "obol-gateway.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Labels of every object. */}}
{{- define "obol-gateway.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "obol-gateway.selectorLabels" . }}
app.kubernetes.io/version: {{ include "obol-gateway.tag" . | replace "+" "_" | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/component: gateway
app.kubernetes.io/part-of: obol
app.kubernetes.io/managed-by: {{ .Release.Service }}
obol.org/offer: {{ .Values.offer.name }}
obol.org/offer-type: {{ .Values.offer.spec.type | default "http" }}
{{- end -}}

{{/*
The release namespace, which is also the ServiceOffer's. An offer that names another namespace
fails the render rather than being created somewhere its offer.yaml does not say.
*/}}
{{- define "obol-gateway.namespace" -}}
{{- $ns := .Values.offer.namespace | default "" -}}
{{- if and $ns (ne $ns .Release.Namespace) -}}
{{- fail (printf "offer.namespace is %q but the release namespace is %q: install the release into the offer's namespace" $ns .Release.Namespace) -}}
{{- end -}}
{{- .Release.Namespace -}}
{{- end -}}

{{/* The public path of the HTTPRoute: route.path, else gateway.pathPrefix. */}}
{{- define "obol-gateway.routePath" -}}
{{- .Values.route.path | default .Values.gateway.pathPrefix -}}
{{- end -}}

{{/*
GOMEMLIMIT: 90% of resources.limits.memory when it is given in Mi or Gi (empty otherwise).
*/}}
{{- define "obol-gateway.gomemlimit" -}}
{{- $m := "" }}
{{- with .Values.resources }}{{ with .limits }}{{ with .memory }}{{ $m = toString . }}{{ end }}{{ end }}{{ end }}
{{- if regexMatch "^[0-9]+Mi$" $m -}}
{{ div (mul (trimSuffix "Mi" $m | atoi) 9) 10 }}MiB
{{- else if regexMatch "^[0-9]+Gi$" $m -}}
{{ div (mul (trimSuffix "Gi" $m | atoi) 9216) 10 }}MiB
{{- end }}
{{- end }}
