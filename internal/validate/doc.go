// Package validate checks a stack repo before it is pushed: it builds every reconciler path
// as Flux would build it and checks every object against its schema.
//
// Repo starts at the entry path (the path of the root Flux Kustomization, e.g.
// clusters/dev) and follows every kustomize.toolkit.fluxcd.io Kustomization found in a build
// whose sourceRef is a GitRepository of the same builds (this repo). Each path is built the
// way kustomize-controller builds it:
//
//   - the repo is reduced to what source-controller puts in the artifact: .sourceignore files,
//     the GitRepository's spec.ignore (for the GitRepository that syncs the entry), the
//     default exclusions, and no symlinks;
//   - fluxcd/pkg/kustomize's Generator writes kustomization.yaml where there is none (it lists
//     the YAML manifests below the directory, descending into subdirectories without a
//     kustomization file and listing those with one as a whole) and applies the
//     Kustomization's targetNamespace, namePrefix/Suffix, patches, images and components;
//   - kustomize.SecureBuild builds it confined to the repo (remote bases are refused);
//   - spec.postBuild substitutions run with kustomize.SubstituteVariables, reading
//     substituteFrom ConfigMaps from what the repo defines.
//
// The input directory is never written: the repo is copied (hard links where possible,
// kustomization files always copied) into a temp dir first.
//
// Every built object is checked:
//
//   - custom resources against their CRD version, the way the API server does on create:
//     unknown fields (structural pruning, reported as errors as fieldValidation=Strict does),
//     the OpenAPI schema after defaulting, embedded resources, list-type invariants and
//     x-kubernetes-validations CEL rules; CRDs come from Options.Schemas and from the builds
//     themselves (a warning when the path applying the CRD does not come before the path
//     using it);
//   - built-in kinds by strict decoding into their client-go types (unknown or duplicate
//     fields, wrong types);
//   - any other kind is an error ("no schema for ...");
//   - metadata as the API server checks it (name format per kind, labels, annotations), a
//     namespace on namespaced kinds (warning) and that namespace being created by the repo or
//     well known (warning), objects applied twice (error), Secrets with data in plain text
//     (error; SOPS-encrypted ones need spec.decryption on their Kustomization);
//   - Flux references: Kustomization spec.path exists, sourceRef and dependsOn resolve,
//     dependsOn has no cycle; HelmRelease chart sources resolve, a chart taken from this repo
//     has a Chart.yaml (a warning for now), valuesFrom ConfigMaps are built by the same path
//     and hold the valuesKey.
//
// Not checked: the validation of built-in kinds beyond their types (the API server's
// per-kind rules live in k8s.io/kubernetes), admission webhooks and policies, RBAC, whether
// referenced Secrets exist in the cluster, Helm chart rendering, and Argo CD wiring.
package validate
