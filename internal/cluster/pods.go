package cluster

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Why a release's pods cannot become Ready, as the kubelet reports it. helm-controller only
// says so when its wait times out (minutes later, and as "context deadline exceeded"), so
// --wait and stack status read the pods themselves.

// stuckWaiting are container waiting reasons that do not clear without a change: a retry
// gives the same answer (the kubelet backs off between tries).
var stuckWaiting = map[string]bool{
	"CrashLoopBackOff":           true,
	"ErrImagePull":               true,
	"ImagePullBackOff":           true,
	"ErrImageNeverPull":          true,
	"InvalidImageName":           true,
	"CreateContainerConfigError": true,
	"CreateContainerError":       true,
	"RunContainerError":          true,
}

// NotReadyAfter is how long a started container may fail its readiness probe before the
// release counts as failed: the chart probes every 2 s and turns unready after 3 failures, so
// this is many failures in a row, not a slow start.
var NotReadyAfter = 20 * time.Second

// PodTrouble is why one pod of a release is not Ready, or nil when nothing is known to be
// wrong (it may still be starting).
type PodTrouble struct {
	Pod, Container string
	Reason         string // the kubelet's: CrashLoopBackOff, ErrImagePull, ..., or ReadinessProbeFailed
	Message        string
	// Stuck: it will not clear by waiting (a retry gives the same answer).
	Stuck bool
}

func (p PodTrouble) String() string {
	s := fmt.Sprintf("pod %s container %s: %s", p.Pod, p.Container, p.Reason)
	if p.Message != "" {
		s += ": " + p.Message
	}
	return s
}

// diagnosePod says why pod is not Ready. probeFailure is the newest "Readiness probe failed"
// event message of the pod (empty if none).
func diagnosePod(pod *corev1.Pod, probeFailure string, now time.Time) *PodTrouble {
	if pod.DeletionTimestamp != nil {
		return nil
	}
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable {
			return &PodTrouble{Pod: pod.Name, Container: "-", Reason: c.Reason, Message: c.Message}
		}
	}
	statuses := append(append([]corev1.ContainerStatus(nil), pod.Status.InitContainerStatuses...), pod.Status.ContainerStatuses...)
	for _, cs := range statuses {
		if w := cs.State.Waiting; w != nil && stuckWaiting[w.Reason] {
			msg := w.Message
			if t := cs.LastTerminationState.Terminated; t != nil && w.Reason == "CrashLoopBackOff" {
				msg = strings.TrimSpace(fmt.Sprintf("exit code %d %s %s", t.ExitCode, t.Reason, firstLine(t.Message)))
			}
			return &PodTrouble{Pod: pod.Name, Container: cs.Name, Reason: w.Reason, Message: msg, Stuck: true}
		}
	}
	for _, cs := range pod.Status.ContainerStatuses {
		r := cs.State.Running
		if cs.Ready || r == nil || probeFailure == "" {
			continue
		}
		stuck := now.Sub(r.StartedAt.Time) >= NotReadyAfter
		return &PodTrouble{Pod: pod.Name, Container: cs.Name, Reason: "ReadinessProbeFailed", Message: probeFailure, Stuck: stuck}
	}
	return nil
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}

// ReleasePods reads the pods of a HelmRelease's Helm release (the chart's
// app.kubernetes.io/instance label is the release name, in the release namespace) created at or after since (zero:
// all) and says why the first unready one is not Ready, a stuck one first; nil when none is
// known to be in trouble. since keeps a wait after a fix from failing on the pods the fix is
// about to replace.
func (c *Client) ReleasePods(ctx context.Context, hr *helmv2.HelmRelease, since time.Time) (*PodTrouble, error) {
	ns, release := hr.GetReleaseNamespace(), hr.GetReleaseName()
	var pods corev1.PodList
	if err := c.Kube.List(ctx, &pods, client.InNamespace(ns), client.MatchingLabels{"app.kubernetes.io/instance": release}); err != nil {
		return nil, fmt.Errorf("reading the pods of %s/%s: %w", ns, release, err)
	}
	sort.Slice(pods.Items, func(i, j int) bool { return pods.Items[i].Name < pods.Items[j].Name })
	now := time.Now()
	var first *PodTrouble
	for i := range pods.Items {
		pod := &pods.Items[i]
		if pod.CreationTimestamp.Time.Before(since.Truncate(time.Second)) {
			continue
		}
		probe := ""
		if unreadyRunning(pod) {
			var err error
			if probe, err = c.lastProbeFailure(ctx, pod); err != nil {
				return nil, err
			}
		}
		if t := diagnosePod(pod, probe, now); t != nil {
			t.Pod = ns + "/" + t.Pod
			if t.Stuck {
				return t, nil
			}
			if first == nil {
				first = t
			}
		}
	}
	return first, nil
}

func unreadyRunning(pod *corev1.Pod) bool {
	for _, cs := range pod.Status.ContainerStatuses {
		if !cs.Ready && cs.State.Running != nil {
			return true
		}
	}
	return false
}

// lastProbeFailure is the message of the newest readiness-probe failure event of pod.
func (c *Client) lastProbeFailure(ctx context.Context, pod *corev1.Pod) (string, error) {
	var evs corev1.EventList
	if err := c.Kube.List(ctx, &evs, client.InNamespace(pod.Namespace), client.MatchingFields{
		"involvedObject.uid": string(pod.UID), "reason": "Unhealthy",
	}); err != nil {
		return "", fmt.Errorf("reading the events of pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	var last *corev1.Event
	for i := range evs.Items {
		e := &evs.Items[i]
		if !strings.HasPrefix(e.Message, "Readiness probe failed") {
			continue
		}
		if last == nil || eventTime(e).After(eventTime(last)) {
			last = e
		}
	}
	if last == nil {
		return "", nil
	}
	return strings.TrimSpace(last.Message), nil
}

func eventTime(e *corev1.Event) time.Time {
	switch {
	case !e.LastTimestamp.IsZero():
		return e.LastTimestamp.Time
	case !e.EventTime.IsZero():
		return e.EventTime.Time
	}
	return e.CreationTimestamp.Time
}
