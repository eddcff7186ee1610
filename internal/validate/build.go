package validate

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/fluxcd/pkg/kustomize"
	"github.com/fluxcd/pkg/sourceignore"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/kustomize/api/konfig"
	kustypes "sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/yaml"
)

// originAnnotation is the annotation kustomize writes with buildMetadata: [originAnnotations].
const originAnnotation = "config.kubernetes.io/origin"

// Objects runs one kustomize build of root/path exactly as kustomize-controller does for a
// Kustomization with no patches, images or targetNamespace: the repo is first reduced to
// what source-controller puts in its artifact (.sourceignore rules, default exclusions, no
// symlinks), a kustomization.yaml is generated when path has none (fluxcd/pkg/kustomize's
// Generator), then kustomize.SecureBuild confines the build to the repo. Remote bases are
// refused. root is never modified.
func Objects(root, path string) ([]*unstructured.Unstructured, error) {
	tmp, err := os.MkdirTemp("", "obol-validate-")
	if err != nil {
		return nil, err
	}
	defer func() { _ = os.RemoveAll(tmp) }()
	src := filepath.Join(tmp, "src")
	if err := materialise(root, src, nil); err != nil {
		return nil, err
	}
	rel, err := cleanRel(path)
	if err != nil {
		return nil, err
	}
	res, err := buildPath(context.Background(), src, rel, unstructured.Unstructured{Object: map[string]any{}}, false, nil)
	if err != nil {
		return nil, err
	}
	return res.objects, nil
}

// materialise copies root to dst the way source-controller archives a GitRepository
// (fluxcd/pkg/artifact storage.Archive with SourceIgnoreFilter): .sourceignore files anywhere
// in the tree plus spec.ignore, on top of the VCS exclusions (and, when no pattern is given at
// all, the default exclusions of images, archives and CI files); anything that is not a
// regular file or a directory (symlinks) is left out.
func materialise(root, dst string, ignore *string) error {
	abs, err := filepath.Abs(root)
	if err != nil {
		return err
	}
	if abs, err = filepath.EvalSymlinks(abs); err != nil {
		return err
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory", root)
	}
	domain := strings.Split(abs, string(filepath.Separator))
	ps, err := sourceignore.LoadIgnorePatterns(abs, domain)
	if err != nil {
		return fmt.Errorf("loading .sourceignore patterns: %w", err)
	}
	if ignore != nil {
		ps = append(ps, sourceignore.ReadPatterns(strings.NewReader(*ignore), domain)...)
	}
	matcher := sourceignore.NewDefaultMatcher(ps, domain)
	if len(ps) > 0 {
		matcher = sourceignore.NewMatcher(append(sourceignore.VCSPatterns(domain), ps...))
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	return filepath.Walk(abs, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if p == abs {
			return nil
		}
		if m := fi.Mode(); !(m.IsRegular() || m.IsDir()) {
			return nil
		}
		if matcher.Match(strings.Split(p, string(filepath.Separator)), fi.IsDir()) {
			return nil
		}
		rel, err := filepath.Rel(abs, p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if fi.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return err
		}
		return linkOrCopy(p, target, fi.Name())
	})
}

// linkOrCopy hard-links src to dst when it can, which is much cheaper than copying a large
// repo; kustomization files are always copied because the generator rewrites them in place
// (a link would write through to the input repo).
func linkOrCopy(src, dst, name string) error {
	for _, k := range konfig.RecognizedKustomizationFileNames() {
		if name == k {
			return copyFile(src, dst)
		}
	}
	if err := os.Link(src, dst); err == nil {
		return nil
	}
	return copyFile(src, dst)
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer func() { _ = in.Close() }()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		_ = out.Close()
		return err
	}
	return out.Close()
}

// cleanRel turns a Flux spec.path ("./apps", "apps/", "/apps", "") into a clean path
// relative to the repo root ("." for the root), confined to the root the way
// securejoin.SecureJoin confines it ("../x" resolves to "x").
func cleanRel(p string) (string, error) {
	p = filepath.FromSlash(p)
	c := filepath.Clean(string(filepath.Separator) + p)
	rel, err := filepath.Rel(string(filepath.Separator), c)
	if err != nil {
		return "", err
	}
	return filepath.ToSlash(rel), nil
}

// buildResult is the output of one build.
type buildResult struct {
	objects []*unstructured.Unstructured
	origins []string // repo-relative file each object came from ("" when unknown)
	notes   []Finding
}

// substituteLookup finds a ConfigMap or Secret (kind) the repo defines, for postBuild.
type substituteLookup func(kind, namespace, name string) *unstructured.Unstructured

// buildPath builds src/dir for the Kustomization ks the way kustomize-controller does:
// Generator(src, ks).WriteFile(dir), SecureBuild(src, dir), then postBuild substitutions.
// src is the materialised artifact; the kustomization file the generator writes is restored
// afterwards so src stays pristine for the next build (kustomize-controller extracts a fresh
// artifact for each reconcile, which is the same thing). With origin, the build also asks
// kustomize for origin annotations, records each object's source file and strips them.
func buildPath(ctx context.Context, src, dir string, ks unstructured.Unstructured, origin bool, lookup substituteLookup) (res buildResult, err error) {
	dirPath := filepath.Join(src, filepath.FromSlash(dir))
	fi, err := os.Stat(dirPath)
	if err != nil {
		return res, fmt.Errorf("kustomization path not found: %s", dir)
	}
	if !fi.IsDir() {
		return res, fmt.Errorf("kustomization path %s is not a directory", dir)
	}

	// Keep whatever kustomization file is there so it can be put back.
	saved := map[string][]byte{}
	for _, name := range konfig.RecognizedKustomizationFileNames() {
		p := filepath.Join(dirPath, name)
		if b, err := os.ReadFile(p); err == nil {
			saved[p] = b
		}
	}
	generated := filepath.Join(dirPath, konfig.DefaultKustomizationFileName())
	defer func() {
		if _, ok := saved[generated]; !ok {
			if rmErr := os.Remove(generated); rmErr != nil && !errors.Is(rmErr, fs.ErrNotExist) && err == nil {
				err = rmErr
			}
		}
		for p, b := range saved {
			if wErr := os.WriteFile(p, b, 0o644); wErr != nil && err == nil {
				err = wErr
			}
		}
	}()

	action, err := kustomize.NewGenerator(src, ks).WriteFile(dirPath)
	if err != nil {
		return res, cleanErr(src, err)
	}
	if origin {
		kfile := generated
		if action != kustomize.CreatedAction {
			for _, name := range konfig.RecognizedKustomizationFileNames() {
				if _, ok := saved[filepath.Join(dirPath, name)]; ok {
					kfile = filepath.Join(dirPath, name)
					break
				}
			}
		}
		if err := addOriginAnnotations(kfile); err != nil {
			return res, cleanErr(src, err)
		}
	}

	m, err := kustomize.SecureBuild(src, dirPath, false)
	if err != nil {
		return res, fmt.Errorf("kustomize build failed: %w", cleanErr(src, err))
	}

	if _, found, _ := unstructured.NestedMap(ks.Object, "spec", "postBuild"); found {
		always, _, _ := unstructured.NestedString(ks.Object, "spec", "postBuild", "substituteStrategy")
		c := &repoClient{lookup: lookup, kustomization: ks}
		for _, r := range m.Resources() {
			out, err := kustomize.SubstituteVariables(ctx, c, ks, r,
				kustomize.SubstituteWithStrict(false),
				kustomize.SubstituteWithAlways(always == "Always"))
			if err != nil {
				return res, fmt.Errorf("post build failed for '%s/%s': %w", r.GetGvk(), r.GetName(), err)
			}
			if out != nil {
				if _, err := m.Replace(r); err != nil {
					return res, err
				}
			}
		}
		res.notes = append(res.notes, c.notes...)
	}

	// The controller hands m.AsYaml() to ssa's ReadObjects; decode the same bytes the same way
	// (into Unstructured, whose JSON decoding keeps integers int64, as the API server does).
	data, err := m.AsYaml()
	if err != nil {
		return res, fmt.Errorf("kustomize build failed: %w", err)
	}
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 2048)
	for {
		obj := &unstructured.Unstructured{}
		if err := dec.Decode(obj); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return res, fmt.Errorf("decoding the build output: %w", err)
		}
		if len(obj.Object) == 0 {
			continue
		}
		file := ""
		if origin {
			file = takeOrigin(obj, dir)
		}
		res.objects = append(res.objects, obj)
		res.origins = append(res.origins, file)
	}
	return res, nil
}

// addOriginAnnotations adds originAnnotations to the buildMetadata of the kustomization file
// the generator wrote (it has already re-marshalled the file through kustypes, so doing it
// again changes nothing else).
func addOriginAnnotations(kfile string) error {
	b, err := os.ReadFile(kfile)
	if err != nil {
		return err
	}
	var k kustypes.Kustomization
	if err := yaml.Unmarshal(b, &k); err != nil {
		return err
	}
	for _, m := range k.BuildMetadata {
		if m == kustypes.OriginAnnotations {
			return nil
		}
	}
	k.BuildMetadata = append(k.BuildMetadata, kustypes.OriginAnnotations)
	out, err := yaml.Marshal(k)
	if err != nil {
		return err
	}
	return os.WriteFile(kfile, out, 0o644)
}

// takeOrigin removes the origin annotation from obj and returns the repo-relative file it
// names: the manifest for a resource, the kustomization file for a generated object.
func takeOrigin(obj *unstructured.Unstructured, dir string) string {
	ann := obj.GetAnnotations()
	v, ok := ann[originAnnotation]
	if !ok {
		return ""
	}
	delete(ann, originAnnotation)
	if len(ann) == 0 {
		unstructured.RemoveNestedField(obj.Object, "metadata", "annotations")
	} else {
		obj.SetAnnotations(ann)
	}
	var o struct {
		Path         string `json:"path"`
		ConfiguredIn string `json:"configuredIn"`
		Repo         string `json:"repo"`
	}
	if err := yaml.Unmarshal([]byte(v), &o); err != nil || o.Repo != "" {
		return ""
	}
	p := o.Path
	if p == "" {
		p = o.ConfiguredIn
	}
	if p == "" {
		return ""
	}
	rel, err := cleanRel(filepath.Join(filepath.FromSlash(dir), filepath.FromSlash(p)))
	if err != nil {
		return ""
	}
	return rel
}

// cleanErr makes an error message repo-relative: the temp dir the repo was copied to means
// nothing to the user.
func cleanErr(src string, err error) error {
	if err == nil {
		return nil
	}
	msg := strings.ReplaceAll(err.Error(), src+string(filepath.Separator), "")
	msg = strings.ReplaceAll(msg, src, ".")
	return errors.New(msg)
}

// repoClient is the controller-runtime client SubstituteVariables reads substituteFrom
// ConfigMaps and Secrets with: it serves them from the repo's built objects. A reference the
// repo does not define is recorded and served as empty, which is what the controller does
// for variables it cannot resolve (non-strict substitution).
type repoClient struct {
	client.Client
	lookup        substituteLookup
	kustomization unstructured.Unstructured
	notes         []Finding
}

func (c *repoClient) Get(_ context.Context, key client.ObjectKey, obj client.Object, _ ...client.GetOption) error {
	kind := ""
	switch obj.(type) {
	case *corev1.ConfigMap:
		kind = "ConfigMap"
	case *corev1.Secret:
		kind = "Secret"
	default:
		return apierrors.NewNotFound(schema.GroupResource{}, key.Name)
	}
	var u *unstructured.Unstructured
	if c.lookup != nil {
		u = c.lookup(kind, key.Namespace, key.Name)
	}
	if u == nil {
		optional := false
		refs, _, _ := unstructured.NestedSlice(c.kustomization.Object, "spec", "postBuild", "substituteFrom")
		for _, r := range refs {
			if m, ok := r.(map[string]any); ok && m["kind"] == kind && m["name"] == key.Name {
				optional, _ = m["optional"].(bool)
			}
		}
		if optional {
			return apierrors.NewNotFound(schema.GroupResource{Resource: strings.ToLower(kind) + "s"}, key.Name)
		}
		for _, n := range c.notes {
			if strings.Contains(n.Message, kind+"/"+key.Name+" ") {
				return nil
			}
		}
		c.notes = append(c.notes, Finding{Severity: SeverityWarning, Field: "spec.postBuild.substituteFrom",
			Message: fmt.Sprintf("%s/%s is not defined in the repo; its variables were substituted as empty (they must exist in the cluster)", kind, key.Name)})
		return nil
	}
	return runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, obj)
}
