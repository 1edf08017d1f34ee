{{/*
What the controller does with each kind, and nothing more. The e2e suite runs the
controller under these rules and checks, from the API server's audit log, that every verb
of every rule below was used and that nothing was refused. A cache lists by a watch
(a watch-list), and by `list` in pages where the API server refuses one (the WatchList
feature gate off, as by default in Kubernetes 1.33): both verbs stay.
*/}}
{{- define "canary.rules" -}}
# Canaries: watched (and re-listed by name after a conflict); finalizers added and
# removed with a JSON patch.
- apiGroups: [canary.dev]
  resources: [canaries]
  verbs: [list, watch, patch]
# Progress is recorded in the status subresource.
- apiGroups: [canary.dev]
  resources: [canaries/status]
  verbs: [patch]
# Reusable queries, and where alerts go.
- apiGroups: [canary.dev]
  resources: [metrictemplates, alertproviders]
  verbs: [list, watch]
# Objects canary generates are written with server-side apply: a PATCH, which also needs
# `create` the first time. The target and its -primary copy; the canary's replica count;
# on deletion with revertOnDeletion the target is read fresh.
- apiGroups: [apps]
  resources: [deployments]
  verbs: [get, list, watch, create, patch]
# A Deployment that is not ready gets its pods listed, so that the status says why in
# their words (ImagePullBackOff, CrashLoopBackOff, Unschedulable).
- apiGroups: [""]
  resources: [pods]
  verbs: [list]
# Apex, -primary and -canary Services.
- apiGroups: [""]
  resources: [services]
  verbs: [list, watch, create, patch]
# Deleted on deletion with revertOnDeletion (the VirtualService), and when a Canary moves
# to another provider.
- apiGroups: [networking.istio.io]
  resources: [virtualservices, destinationrules]
  verbs: [list, watch, create, patch, delete]
# Gateway API routes canary creates (spec.provider gatewayapi:v1), read for their
# acceptance by the Gateways; deleted on deletion with revertOnDeletion, and when a
# Canary moves to another provider.
- apiGroups: [gateway.networking.k8s.io]
  resources: [httproutes, grpcroutes]
  verbs: [list, watch, create, patch, delete]
# The primary's copy of the user's autoscaler.
- apiGroups: [autoscaling]
  resources: [horizontalpodautoscalers]
  verbs: [list, watch, create, patch]
# Referenced configs are hashed into the revision and copied to -primary; Secrets also
# hold webhook and metrics credentials. The caches keep the content of only those, so a
# config that becomes referenced is read once whole (get).
- apiGroups: [""]
  resources: [configmaps, secrets]
  verbs: [get, list, watch, create, patch]
# Events go through the core API, which takes the count and timestamps kubectl sorts by;
# a repeat of a recent event patches its count.
- apiGroups: [""]
  resources: [events]
  verbs: [create, patch]
{{- end -}}
