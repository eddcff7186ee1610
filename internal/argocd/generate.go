package argocd

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"sort"
	"strings"
	"sync"
	"text/template"

	"sigs.k8s.io/yaml"
)

// Generate makes the Applications an ApplicationSet's git files generators produce from the repo
// revision fsys holds, as the ApplicationSet controller does with goTemplate: every file that
// matches a generator's glob becomes one parameter set (the file's fields, plus .path), and
// every string of the template is a Go template over it (missingkey=error when the set asks).
// Other generators are refused: obol renders none.
func Generate(set *ApplicationSet, fsys fs.FS) ([]Application, error) {
	if !set.Spec.GoTemplate {
		return nil, fmt.Errorf("ApplicationSet %s: only goTemplate is supported", set.Name)
	}
	missingKey := "missingkey=default"
	for _, o := range set.Spec.GoTemplateOptions {
		if strings.HasPrefix(o, "missingkey=") {
			missingKey = o
		}
	}
	var tmpl map[string]any
	if err := roundTrip(set.Spec.Template, &tmpl); err != nil {
		return nil, err
	}
	var apps []Application
	seen := map[string]string{}
	for i, g := range set.Spec.Generators {
		if g.Git == nil {
			return nil, fmt.Errorf("ApplicationSet %s: generators[%d]: only the git generator is supported", set.Name, i)
		}
		for _, item := range g.Git.Files {
			matches, err := fs.Glob(fsys, item.Path)
			if err != nil {
				return nil, fmt.Errorf("ApplicationSet %s: files path %q: %w", set.Name, item.Path, err)
			}
			sort.Strings(matches)
			for _, file := range matches {
				params, err := fileParams(fsys, file)
				if err != nil {
					return nil, fmt.Errorf("ApplicationSet %s: %w", set.Name, err)
				}
				rendered, err := renderValue(tmpl, params, missingKey)
				if err != nil {
					return nil, fmt.Errorf("ApplicationSet %s: %s: %w", set.Name, file, err)
				}
				var app Application
				if err := roundTrip(rendered, &app); err != nil {
					return nil, fmt.Errorf("ApplicationSet %s: %s: %w", set.Name, file, err)
				}
				app.APIVersion, app.Kind = APIVersion, ApplicationKind
				if app.Namespace == "" {
					app.Namespace = set.Namespace
				}
				if other, dup := seen[app.Name]; dup {
					return nil, fmt.Errorf("ApplicationSet %s: %s and %s both generate Application %q", set.Name, other, file, app.Name)
				}
				seen[app.Name] = file
				apps = append(apps, app)
			}
		}
	}
	return apps, nil
}

// fileParams are a files-generator parameter set: the file's content and .path, as the
// ApplicationSet controller builds it for goTemplate.
func fileParams(fsys fs.FS, file string) (map[string]any, error) {
	b, err := fs.ReadFile(fsys, file)
	if err != nil {
		return nil, err
	}
	params := map[string]any{}
	if err := yaml.Unmarshal(b, &params); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	dir := path.Dir(file)
	segments := []any{}
	for _, s := range strings.Split(dir, "/") {
		segments = append(segments, s)
	}
	params["path"] = map[string]any{
		"path":               dir,
		"basename":           path.Base(dir),
		"filename":           path.Base(file),
		"basenameNormalized": normalize(path.Base(dir)),
		"filenameNormalized": normalize(path.Base(file)),
		"segments":           segments,
	}
	return params, nil
}

var notDNS = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`[^-a-z0-9.]`) })

// normalize is the controller's sanitizeName: lower case, anything but [-a-z0-9.] becomes "-".
func normalize(s string) string { return notDNS().ReplaceAllString(strings.ToLower(s), "-") }

// renderValue renders every string in v (maps and lists walked) as a Go template over params.
func renderValue(v any, params map[string]any, missingKey string) (any, error) {
	switch t := v.(type) {
	case string:
		if !strings.Contains(t, "{{") {
			return t, nil
		}
		tm, err := template.New("").Option(missingKey).Parse(t)
		if err != nil {
			return nil, fmt.Errorf("template %q: %w", t, err)
		}
		var b strings.Builder
		if err := tm.Execute(&b, params); err != nil {
			return nil, fmt.Errorf("template %q: %w", t, err)
		}
		return b.String(), nil
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, e := range t {
			r, err := renderValue(e, params, missingKey)
			if err != nil {
				return nil, err
			}
			out[k] = r
		}
		return out, nil
	case []any:
		out := make([]any, len(t))
		for i, e := range t {
			r, err := renderValue(e, params, missingKey)
			if err != nil {
				return nil, err
			}
			out[i] = r
		}
		return out, nil
	}
	return v, nil
}

func roundTrip(in, out any) error {
	b, err := json.Marshal(in)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, out)
}
