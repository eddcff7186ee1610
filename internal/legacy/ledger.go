package legacy

import (
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"path"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/obol/obol/api/v1alpha1"
)

// Fields of a legacy ServiceOffer that obol's has no equivalent for.
var (
	droppedSpec         = []string{"agent", "skill", "drainAt", "drainGracePeriod"}
	droppedRegistration = []string{"services", "supportedTrust"}
	// keptMetadata is what offer.yaml keeps of metadata; the rest was set by the cluster.
	keptMetadata = []string{"name", "namespace", "labels", "annotations"}
)

// lastApplied is kubectl's copy of the applied manifest: the manifest itself, again.
const lastApplied = "kubectl.kubernetes.io/last-applied-configuration"

// ReadSellLedger reads every manifest under sell-http/. Like the predecessor it skips
// subdirectories and files that are not .yaml; unlike it, it says so.
func ReadSellLedger(fsys fs.FS) ([]Item, []Problem) {
	var c collector
	ents, err := fs.ReadDir(fsys, SellLedgerDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		c.problem(SellLedgerDir, Malformed, "", "cannot be listed: %v", err)
		return nil, c.probs
	}
	for _, e := range ents {
		p := path.Join(SellLedgerDir, e.Name())
		switch {
		case e.IsDir():
			c.problem(p, Skipped, "", "is a directory; the ledger holds <namespace>__<name>.yaml files only")
		case !strings.HasSuffix(e.Name(), ".yaml") && !strings.HasSuffix(e.Name(), ".yml"):
			c.problem(p, Skipped, "", "is not a .yaml file; the ledger holds <namespace>__<name>.yaml files only")
		default:
			c.manifest(fsys, p)
		}
	}
	return c.items, c.probs
}

func (c *collector) manifest(fsys fs.FS, p string) {
	c.notes = nil
	base := strings.TrimSuffix(strings.TrimSuffix(path.Base(p), ".yaml"), ".yml")
	fileNS, fileName, ok := strings.Cut(base, "__")
	if !ok {
		fileNS, fileName = "", base
	}
	data, err := readSmall(fsys, p)
	if err != nil {
		c.problem(p, Malformed, fileName, "cannot be read: %v", err)
		return
	}
	j, err := yaml.YAMLToJSON(data)
	if err != nil {
		c.problem(p, Malformed, fileName, "is not valid YAML: %v", err)
		return
	}
	var doc map[string]any
	dec := json.NewDecoder(bytes.NewReader(j))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil || doc == nil {
		c.problem(p, Malformed, fileName, "is not a manifest (a YAML mapping with apiVersion and kind)")
		return
	}

	var offers, others []map[string]any
	switch {
	case doc["kind"] == "List":
		items, ok := doc["items"].([]any)
		if !ok {
			c.problem(p, Malformed, fileName, "is a List without an items list")
			return
		}
		for i, it := range items {
			m, ok := it.(map[string]any)
			if !ok {
				c.problem(p, Malformed, fileName, "items[%d] is not a manifest", i)
				return
			}
			if isServiceOffer(m) {
				offers = append(offers, m)
			} else {
				others = append(others, m)
			}
		}
	case isServiceOffer(doc):
		offers = append(offers, doc)
	default:
		c.problem(p, Malformed, fileName, "is %s %s, not a ServiceOffer (%s) or a v1 List holding one", doc["apiVersion"], doc["kind"], v1alpha1.APIVersion)
		return
	}
	if len(offers) == 0 {
		c.problem(p, Malformed, fileName, "is a List with no ServiceOffer in it")
		return
	}

	for _, m := range offers {
		name, ns := metaString(m, "name"), metaString(m, "namespace")
		if name == "" {
			name = fileName
		}
		if ns == "" {
			ns = fileNS
		}
		spec, _ := m["spec"].(map[string]any)
		if t, _ := spec["type"].(string); t == "agent" {
			// An agent's Namespace goes with the agent: nothing of the List is imported.
			c.problem(p, Skipped, name, "is an agent offer: obol does not sell agents; keep serving it with the predecessor")
			continue
		}
		for _, o := range others {
			c.problem(p, Dropped, name, "%s %q is not imported: obol commits offers only; create it in the cluster yourself (the offer's upstream must exist to become Ready)", o["kind"], metaString(o, "name"))
		}
		c.serviceOffer(p, name, ns, m)
	}
}

func isServiceOffer(m map[string]any) bool {
	return m["apiVersion"] == v1alpha1.APIVersion && m["kind"] == v1alpha1.ServiceOfferKind
}

func metaString(m map[string]any, k string) string {
	md, _ := m["metadata"].(map[string]any)
	s, _ := md[k].(string)
	return s
}

// serviceOffer maps a legacy ServiceOffer manifest. The shapes are the same API; what obol's
// lacks is reported, and any other unknown field rejects the offer rather than vanish.
func (c *collector) serviceOffer(p, name, ns string, m map[string]any) {
	md, _ := m["metadata"].(map[string]any)
	keep := map[string]any{"name": name, "namespace": ns}
	for _, k := range keptMetadata[2:] {
		if v, ok := md[k]; ok {
			keep[k] = v
		}
	}
	if a, ok := keep["annotations"].(map[string]any); ok {
		delete(a, lastApplied)
	}
	out := map[string]any{"apiVersion": m["apiVersion"], "kind": m["kind"], "metadata": keep}
	// status is the cluster's, never carried.
	if spec, ok := m["spec"].(map[string]any); ok {
		spec = clone(spec)
		for _, k := range droppedSpec {
			if _, ok := spec[k]; ok {
				delete(spec, k)
				c.problem(p, Dropped, name, "spec.%s is not carried: obol's ServiceOffer has no such field", k)
			}
		}
		if reg, ok := spec["registration"].(map[string]any); ok {
			reg = clone(reg)
			for _, k := range droppedRegistration {
				if _, ok := reg[k]; ok {
					delete(reg, k)
					c.problem(p, Dropped, name, "spec.registration.%s is not carried: obol's spec.registration has no such field", k)
				}
			}
			spec["registration"] = reg
		}
		out["spec"] = spec
	} else if m["spec"] != nil {
		c.problem(p, Malformed, name, "spec is not a mapping")
		return
	}
	j, err := json.Marshal(out)
	if err != nil {
		c.problem(p, Malformed, name, "cannot be converted: %v", err)
		return
	}
	var o v1alpha1.ServiceOffer
	dec := json.NewDecoder(bytes.NewReader(j))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&o); err != nil {
		c.problem(p, Rejected, name, "does not fit obol's ServiceOffer: %s; fix the file and import again, or recreate the offer with `obol sell`", strings.TrimPrefix(err.Error(), "json: "))
		return
	}
	c.finish(p, &o)
}

func clone(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
