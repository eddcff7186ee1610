package validate

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"regexp"
	"sort"
	"strings"
	"sync"

	"k8s.io/apiextensions-apiserver/pkg/apihelpers"
	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	structuralschema "k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/cel"
	structuraldefaulting "k8s.io/apiextensions-apiserver/pkg/apiserver/schema/defaulting"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/listtype"
	schemaobjectmeta "k8s.io/apiextensions-apiserver/pkg/apiserver/schema/objectmeta"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/pruning"
	apiservervalidation "k8s.io/apiextensions-apiserver/pkg/apiserver/validation"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer/json"
	"k8s.io/apimachinery/pkg/util/validation/field"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	celconfig "k8s.io/apiserver/pkg/apis/cel"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/yaml"
)

// Schemas maps a GroupVersionKind to what the API server would check an object of that kind
// against: the structural schema and validators of a CRD version, or, for the built-in kinds,
// the client-go types (decoded strictly). It is safe for concurrent use.
type Schemas struct {
	mu   sync.RWMutex
	gvks map[schema.GroupVersionKind]*crdVersion
	gks  map[schema.GroupKind]*crdKind
}

// crdKind is what is known about a CRD's kind across its versions.
type crdKind struct {
	crdName    string
	namespaced bool
	versions   []string // all versions, served or not, in CRD order
	served     []string
	origin     string // "" for schemas given to LoadSchemas/Add, else the path that applies the CRD
}

// crdVersion is one version of a CRD, ready to validate objects with.
type crdVersion struct {
	gvk                schema.GroupVersionKind
	served             bool
	deprecated         bool
	deprecationWarning string
	statusSubresource  bool
	structural         *structuralschema.Structural // nil: no schema, anything goes
	validator          apiservervalidation.SchemaValidator

	celOnce sync.Once
	cel     *cel.Validator
}

// NewSchemas returns an empty schema set; the built-in kinds are always known.
func NewSchemas() *Schemas {
	return &Schemas{
		gvks: map[schema.GroupVersionKind]*crdVersion{},
		gks:  map[schema.GroupKind]*crdKind{},
	}
}

// LoadSchemas reads CustomResourceDefinitions (apiextensions.k8s.io/v1) from multi-document
// YAML or JSON and returns a schema set holding every version of each of them. Versions that
// are not served are kept so objects using them get a precise error.
func LoadSchemas(crdDocs ...[]byte) (*Schemas, error) {
	s := NewSchemas()
	for i, doc := range crdDocs {
		crds, err := decodeCRDs(doc)
		if err != nil {
			return nil, fmt.Errorf("CRD document %d: %w", i, err)
		}
		for _, crd := range crds {
			if err := s.Add(crd); err != nil {
				return nil, fmt.Errorf("CRD document %d: %w", i, err)
			}
		}
	}
	return s, nil
}

func decodeCRDs(doc []byte) ([]*apiextv1.CustomResourceDefinition, error) {
	var out []*apiextv1.CustomResourceDefinition
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(doc)))
	for {
		raw, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		if len(bytes.TrimSpace(raw)) == 0 {
			continue
		}
		var tm struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
		}
		if err := yaml.Unmarshal(raw, &tm); err != nil {
			return nil, err
		}
		if tm.APIVersion == "" && tm.Kind == "" {
			continue // e.g. a document holding only null
		}
		if tm.APIVersion != apiextv1.SchemeGroupVersion.String() || tm.Kind != "CustomResourceDefinition" {
			return nil, fmt.Errorf("not an apiextensions.k8s.io/v1 CustomResourceDefinition: %s %s", tm.APIVersion, tm.Kind)
		}
		crd := &apiextv1.CustomResourceDefinition{}
		if err := yaml.Unmarshal(raw, crd); err != nil {
			return nil, err
		}
		out = append(out, crd)
	}
}

// Add adds (or replaces, by CRD name) the schemas of every version of crd. It fails when the
// API server would reject the CRD itself.
func (s *Schemas) Add(crd *apiextv1.CustomResourceDefinition) error {
	if errs := s.add(crd, ""); len(errs) > 0 {
		return fmt.Errorf("CustomResourceDefinition %s: %w", crd.Name, errs.ToAggregate())
	}
	return nil
}

// add validates crd as the API server does on create and registers its versions. origin is
// the repo path that ships it ("" for schemas given by the caller).
func (s *Schemas) add(in *apiextv1.CustomResourceDefinition, origin string) field.ErrorList {
	crd := in.DeepCopy()
	apiextv1.SetObjectDefaults_CustomResourceDefinition(crd)

	if errs := checkCRDBasics(crd); len(errs) > 0 {
		return errs
	}

	gk := schema.GroupKind{Group: crd.Spec.Group, Kind: crd.Spec.Names.Kind}
	kind := &crdKind{crdName: crd.Name, namespaced: crd.Spec.Scope == apiextv1.NamespaceScoped, origin: origin}
	versions := map[schema.GroupVersionKind]*crdVersion{}
	for _, v := range crd.Spec.Versions {
		gvk := gk.WithVersion(v.Name)
		cv := &crdVersion{gvk: gvk, served: v.Served, deprecated: v.Deprecated}
		if v.DeprecationWarning != nil {
			cv.deprecationWarning = *v.DeprecationWarning
		}
		if sub, err := apihelpers.GetSubresourcesForVersion(crd, v.Name); err == nil && sub != nil && sub.Status != nil {
			cv.statusSubresource = true
		}
		val, err := apihelpers.GetSchemaForVersion(crd, v.Name)
		if err != nil {
			return field.ErrorList{field.Invalid(field.NewPath("spec", "versions"), v.Name, err.Error())}
		}
		if val != nil && val.OpenAPIV3Schema != nil {
			iv := &apiextensions.CustomResourceValidation{}
			if err := apiextv1.Convert_v1_CustomResourceValidation_To_apiextensions_CustomResourceValidation(val, iv, nil); err != nil {
				return field.ErrorList{field.InternalError(nil, err)}
			}
			vpath := field.NewPath("spec", "versions").Key(v.Name).Child("schema", "openAPIV3Schema")
			st, err := structuralschema.NewStructural(iv.OpenAPIV3Schema)
			if err != nil {
				return field.ErrorList{field.Invalid(vpath, "", err.Error())}
			}
			if errs := structuralschema.ValidateStructural(vpath, st); len(errs) > 0 {
				return errs
			}
			st = st.DeepCopy()
			if err := structuraldefaulting.PruneDefaults(st); err != nil {
				return field.ErrorList{field.Invalid(field.NewPath("spec", "versions").Key(v.Name), "", err.Error())}
			}
			cv.structural = st
			validator, _, err := apiservervalidation.NewSchemaValidator(iv.OpenAPIV3Schema)
			if err != nil {
				return field.ErrorList{field.Invalid(field.NewPath("spec", "versions").Key(v.Name), "", err.Error())}
			}
			cv.validator = validator
		}
		versions[gvk] = cv
		kind.versions = append(kind.versions, v.Name)
		if v.Served {
			kind.served = append(kind.served, v.Name)
		}
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.gks[gk]; ok {
		for _, v := range old.versions {
			delete(s.gvks, gk.WithVersion(v))
		}
	}
	s.gks[gk] = kind
	for gvk, cv := range versions {
		s.gvks[gvk] = cv
	}
	return nil
}

// clone returns a copy that can be extended without changing s. The compiled validators are
// shared (they are immutable once built).
func (s *Schemas) clone() *Schemas {
	c := NewSchemas()
	if s == nil {
		return c
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	for k, v := range s.gvks {
		c.gvks[k] = v
	}
	for k, v := range s.gks {
		c.gks[k] = v
	}
	return c
}

// Kinds lists the custom resource kinds (every version) the set holds, sorted.
func (s *Schemas) Kinds() []schema.GroupVersionKind {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]schema.GroupVersionKind, 0, len(s.gvks))
	for gvk := range s.gvks {
		out = append(out, gvk)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out
}

func (s *Schemas) lookup(gvk schema.GroupVersionKind) (*crdVersion, *crdKind) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.gvks[gvk], s.gks[gvk.GroupKind()]
}

// scope says whether objects of gvk are namespaced; known is false for kinds with no schema.
func (s *Schemas) scope(gvk schema.GroupVersionKind) (namespaced, known bool) {
	if _, k := s.lookup(gvk); k != nil {
		return k.namespaced, true
	}
	if builtinScheme().Recognizes(gvk) {
		return !clusterScoped[gvk.GroupKind()], true
	}
	return false, false
}

// Check validates one object against its schema, as the API server would on create: a
// custom resource against its CRD version (unknown fields, OpenAPI schema, embedded
// resources, list types, x-kubernetes-validations CEL rules), a built-in kind by strict
// decoding into its client-go type. Findings carry Object, Field and Message; Path is left
// to the caller.
func (s *Schemas) Check(obj *unstructured.Unstructured) []Finding {
	gvk := obj.GroupVersionKind()
	id := objectID(obj)
	if cv, kind := s.lookup(gvk); kind != nil {
		if cv == nil {
			return []Finding{{Severity: SeverityError, Object: id, Field: "apiVersion",
				Message: fmt.Sprintf("version %s is not defined by CRD %s (versions: %s)", gvk.Version, kind.crdName, strings.Join(kind.versions, ", "))}}
		}
		if !cv.served {
			return []Finding{{Severity: SeverityError, Object: id, Field: "apiVersion",
				Message: fmt.Sprintf("version %s of CRD %s is not served (served: %s)", gvk.Version, kind.crdName, strings.Join(kind.served, ", "))}}
		}
		return cv.check(obj, id)
	}
	if builtinScheme().Recognizes(gvk) {
		return checkBuiltin(obj, id)
	}
	return []Finding{{Severity: SeverityError, Object: id, Field: "apiVersion",
		Message: fmt.Sprintf("no schema for %s/%s; is its CRD installed by infrastructure/?", gvk.GroupVersion().String(), gvk.Kind)}}
}

func (cv *crdVersion) celValidator() *cel.Validator {
	cv.celOnce.Do(func() {
		if cv.structural != nil {
			// Compiles the rules once; nil when the schema has none.
			cv.cel = cel.NewValidator(cv.structural, true, celconfig.PerCallLimit)
		}
	})
	return cv.cel
}

// check runs the API server's create path for custom resources: decode-time pruning and
// metadata coercion (collecting unknown fields instead of dropping them silently), status
// reset when the status subresource is on, defaulting, then validation.
func (cv *crdVersion) check(obj *unstructured.Unstructured, id string) []Finding {
	var out []Finding
	if cv.deprecated {
		msg := cv.deprecationWarning
		if msg == "" {
			msg = fmt.Sprintf("%s is deprecated", cv.gvk.GroupVersion())
		}
		out = append(out, Finding{Severity: SeverityWarning, Object: id, Field: "apiVersion", Message: msg})
	}
	u := runtime.DeepCopyJSON(obj.Object)

	// What the API server's decoder does (unstructuredSchemaCoercer), with unknown fields
	// reported the way fieldValidation=Strict reports them.
	var unknown []string
	objectMeta, foundMeta, metaUnknown, err := schemaobjectmeta.GetObjectMetaWithOptions(u, schemaobjectmeta.ObjectMetaOptions{ReturnUnknownFieldPaths: true})
	if err != nil {
		return append(out, Finding{Severity: SeverityError, Object: id, Field: "metadata", Message: err.Error()})
	}
	unknown = append(unknown, metaUnknown...)
	apiVersion, kind := obj.GetAPIVersion(), obj.GetKind()
	if cv.structural != nil {
		unknown = append(unknown, pruning.PruneWithOptions(u, cv.structural, true, structuralschema.UnknownFieldPathOptions{TrackUnknownFieldPaths: true})...)
		structuraldefaulting.PruneNonNullableNullsWithoutDefaults(u, cv.structural)
		ferr, paths := schemaobjectmeta.CoerceWithOptions(nil, u, cv.structural, false, schemaobjectmeta.CoerceOptions{ReturnUnknownFieldPaths: true})
		if ferr != nil {
			out = append(out, fieldFinding(id, ferr))
		}
		unknown = append(unknown, paths...)
	}
	u["apiVersion"], u["kind"] = apiVersion, kind
	if foundMeta {
		if err := schemaobjectmeta.SetObjectMeta(u, objectMeta); err != nil {
			out = append(out, Finding{Severity: SeverityError, Object: id, Field: "metadata", Message: err.Error()})
		}
	}
	sort.Strings(unknown)
	for _, p := range unknown {
		out = append(out, Finding{Severity: SeverityError, Object: id, Field: p, Message: fmt.Sprintf("unknown field %q", p)})
	}
	if cv.statusSubresource {
		// PrepareForCreate: the status of a new object is not taken from the request.
		delete(u, "status")
	}
	if cv.structural == nil {
		return out
	}
	structuraldefaulting.Default(u, cv.structural)

	var errs field.ErrorList
	errs = append(errs, apiservervalidation.ValidateCustomResource(nil, u, cv.validator)...)
	errs = append(errs, schemaobjectmeta.Validate(context.Background(), nil, u, cv.structural, false)...)
	errs = append(errs, listtype.ValidateListSetsAndMaps(nil, cv.structural, u)...)
	if celv := cv.celValidator(); celv != nil {
		// The API server adds "some validation rules were not checked" instead of running
		// the rules; the errors already listed say all there is to fix.
		if !hasBlockingErr(errs) {
			celErrs, _ := celv.Validate(context.Background(), nil, cv.structural, u, nil, celconfig.RuntimeCELCostBudget)
			errs = append(errs, celErrs...)
		}
	}
	for _, e := range errs {
		out = append(out, fieldFinding(id, e))
	}
	return out
}

// hasBlockingErr is the API server's rule (registry/customresource/strategy.go): CEL rules
// are not evaluated on an object that already fails these checks.
func hasBlockingErr(errs field.ErrorList) bool {
	for _, err := range errs {
		switch err.Type {
		case field.ErrorTypeNotSupported, field.ErrorTypeRequired, field.ErrorTypeTooLong, field.ErrorTypeTooMany, field.ErrorTypeTypeInvalid:
			return true
		}
	}
	return false
}

func fieldFinding(id string, e *field.Error) Finding {
	msg := e.ErrorBody()
	return Finding{Severity: SeverityError, Object: id, Field: e.Field, Message: msg}
}

// builtinScheme knows the built-in kinds a cluster serves (client-go's scheme) plus
// CustomResourceDefinition.
// Built on first use, not at program start: obol's every command would pay for it.
var builtinScheme = sync.OnceValue(func() *runtime.Scheme {
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		panic(err)
	}
	if err := apiextv1.AddToScheme(s); err != nil {
		panic(err)
	}
	return s
})

var strictDecoder = sync.OnceValue(func() *json.Serializer {
	return json.NewSerializerWithOptions(json.DefaultMetaFactory, builtinScheme(), builtinScheme(), json.SerializerOptions{Strict: true})
})

var (
	reUnknownField   = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`unknown field "([^"]+)"`) })
	reDuplicateField = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`duplicate field "([^"]+)"`) })
	reGoField        = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`Go struct field [A-Za-z0-9_]+\.([^ ]+) of type`) })
)

// checkBuiltin decodes a built-in kind strictly: unknown or duplicate fields and values of the
// wrong type are errors.
func checkBuiltin(obj *unstructured.Unstructured, id string) []Finding {
	data, err := obj.MarshalJSON()
	if err != nil {
		return []Finding{{Severity: SeverityError, Object: id, Message: err.Error()}}
	}
	_, _, err = strictDecoder().Decode(data, nil, nil)
	if err == nil {
		return nil
	}
	var out []Finding
	if se, ok := runtime.AsStrictDecodingError(err); ok {
		for _, e := range se.Errors() {
			msg := e.Error()
			f := ""
			if m := reUnknownField().FindStringSubmatch(msg); m != nil {
				f = m[1]
				msg = fmt.Sprintf("unknown field %q", f)
			} else if m := reDuplicateField().FindStringSubmatch(msg); m != nil {
				f = m[1]
			}
			out = append(out, Finding{Severity: SeverityError, Object: id, Field: f, Message: msg})
		}
		return out
	}
	msg := err.Error()
	f := ""
	if m := reGoField().FindStringSubmatch(msg); m != nil {
		f = m[1]
	}
	return []Finding{{Severity: SeverityError, Object: id, Field: f, Message: msg}}
}

// clusterScoped lists the built-in kinds that are not namespaced (Kubernetes 1.37).
var clusterScoped = map[schema.GroupKind]bool{
	{Group: "", Kind: "Namespace"}:                                                    true,
	{Group: "", Kind: "Node"}:                                                         true,
	{Group: "", Kind: "PersistentVolume"}:                                             true,
	{Group: "", Kind: "ComponentStatus"}:                                              true,
	{Group: "rbac.authorization.k8s.io", Kind: "ClusterRole"}:                         true,
	{Group: "rbac.authorization.k8s.io", Kind: "ClusterRoleBinding"}:                  true,
	{Group: "apiextensions.k8s.io", Kind: "CustomResourceDefinition"}:                 true,
	{Group: "apiregistration.k8s.io", Kind: "APIService"}:                             true,
	{Group: "storage.k8s.io", Kind: "StorageClass"}:                                   true,
	{Group: "storage.k8s.io", Kind: "CSIDriver"}:                                      true,
	{Group: "storage.k8s.io", Kind: "CSINode"}:                                        true,
	{Group: "storage.k8s.io", Kind: "VolumeAttachment"}:                               true,
	{Group: "storage.k8s.io", Kind: "VolumeAttributesClass"}:                          true,
	{Group: "scheduling.k8s.io", Kind: "PriorityClass"}:                               true,
	{Group: "node.k8s.io", Kind: "RuntimeClass"}:                                      true,
	{Group: "networking.k8s.io", Kind: "IngressClass"}:                                true,
	{Group: "networking.k8s.io", Kind: "IPAddress"}:                                   true,
	{Group: "networking.k8s.io", Kind: "ServiceCIDR"}:                                 true,
	{Group: "admissionregistration.k8s.io", Kind: "ValidatingWebhookConfiguration"}:   true,
	{Group: "admissionregistration.k8s.io", Kind: "MutatingWebhookConfiguration"}:     true,
	{Group: "admissionregistration.k8s.io", Kind: "ValidatingAdmissionPolicy"}:        true,
	{Group: "admissionregistration.k8s.io", Kind: "ValidatingAdmissionPolicyBinding"}: true,
	{Group: "admissionregistration.k8s.io", Kind: "MutatingAdmissionPolicy"}:          true,
	{Group: "admissionregistration.k8s.io", Kind: "MutatingAdmissionPolicyBinding"}:   true,
	{Group: "certificates.k8s.io", Kind: "CertificateSigningRequest"}:                 true,
	{Group: "certificates.k8s.io", Kind: "ClusterTrustBundle"}:                        true,
	{Group: "flowcontrol.apiserver.k8s.io", Kind: "FlowSchema"}:                       true,
	{Group: "flowcontrol.apiserver.k8s.io", Kind: "PriorityLevelConfiguration"}:       true,
	{Group: "resource.k8s.io", Kind: "DeviceClass"}:                                   true,
	{Group: "resource.k8s.io", Kind: "ResourceSlice"}:                                 true,
	{Group: "resource.k8s.io", Kind: "DeviceTaintRule"}:                               true,
	{Group: "internal.apiserver.k8s.io", Kind: "StorageVersion"}:                      true,
	{Group: "storagemigration.k8s.io", Kind: "StorageVersionMigration"}:               true,
	{Group: "authentication.k8s.io", Kind: "TokenReview"}:                             true,
	{Group: "authentication.k8s.io", Kind: "SelfSubjectReview"}:                       true,
	{Group: "authorization.k8s.io", Kind: "SubjectAccessReview"}:                      true,
	{Group: "authorization.k8s.io", Kind: "SelfSubjectAccessReview"}:                  true,
	{Group: "authorization.k8s.io", Kind: "SelfSubjectRulesReview"}:                   true,
}

// checkCRDBasics is the part of the API server's CRD validation that matters for checking
// objects: names, group, scope, versions. (The full ValidateCustomResourceDefinition lives in
// a package that drags the API server's webhook and tracing stack into the module graph.)
func checkCRDBasics(crd *apiextv1.CustomResourceDefinition) field.ErrorList {
	var errs field.ErrorList
	spec := field.NewPath("spec")
	if crd.Spec.Group == "" {
		errs = append(errs, field.Required(spec.Child("group"), ""))
	}
	if crd.Spec.Names.Kind == "" {
		errs = append(errs, field.Required(spec.Child("names", "kind"), ""))
	}
	if crd.Spec.Names.Plural == "" {
		errs = append(errs, field.Required(spec.Child("names", "plural"), ""))
	}
	if want := crd.Spec.Names.Plural + "." + crd.Spec.Group; crd.Name != want {
		errs = append(errs, field.Invalid(field.NewPath("metadata", "name"), crd.Name, fmt.Sprintf("must be spec.names.plural+\".\"+spec.group (%s)", want)))
	}
	switch crd.Spec.Scope {
	case apiextv1.NamespaceScoped, apiextv1.ClusterScoped:
	default:
		errs = append(errs, field.NotSupported(spec.Child("scope"), crd.Spec.Scope, []string{string(apiextv1.NamespaceScoped), string(apiextv1.ClusterScoped)}))
	}
	if len(crd.Spec.Versions) == 0 {
		errs = append(errs, field.Required(spec.Child("versions"), "must have exactly one version marked as storage version"))
	}
	storage := 0
	seen := map[string]bool{}
	for i, v := range crd.Spec.Versions {
		if v.Storage {
			storage++
		}
		if seen[v.Name] {
			errs = append(errs, field.Duplicate(spec.Child("versions").Index(i).Child("name"), v.Name))
		}
		seen[v.Name] = true
		if v.Schema == nil || v.Schema.OpenAPIV3Schema == nil {
			errs = append(errs, field.Required(spec.Child("versions").Index(i).Child("schema", "openAPIV3Schema"), "schemas are required"))
		}
	}
	if len(crd.Spec.Versions) > 0 && storage != 1 {
		errs = append(errs, field.Invalid(spec.Child("versions"), storage, "must have exactly one version marked as storage version"))
	}
	if crd.Spec.PreserveUnknownFields {
		errs = append(errs, field.Invalid(spec.Child("preserveUnknownFields"), true, "cannot set to true, set x-kubernetes-preserve-unknown-fields to true in spec.versions[*].schema instead"))
	}
	return errs
}

// LoadSchemasFS loads every *.yaml and *.yml file of dir in fsys (e.g. the embedded
// clusters/flux-system/crds), in name order, with LoadSchemas.
func LoadSchemasFS(fsys fs.FS, dir string) (*Schemas, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, err
	}
	var docs [][]byte
	for _, e := range entries {
		if e.IsDir() || !(strings.HasSuffix(e.Name(), ".yaml") || strings.HasSuffix(e.Name(), ".yml")) {
			continue
		}
		b, err := fs.ReadFile(fsys, path.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		docs = append(docs, b)
	}
	return LoadSchemas(docs...)
}
