package cluster

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestDiagnosePod(t *testing.T) {
	now := time.Now()
	running := func(ago time.Duration, ready bool) corev1.ContainerStatus {
		return corev1.ContainerStatus{Name: "gateway", Ready: ready, State: corev1.ContainerState{
			Running: &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(now.Add(-ago))}}}
	}
	waiting := func(reason, msg string) corev1.ContainerStatus {
		return corev1.ContainerStatus{Name: "gateway", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: msg}}}
	}
	pod := func(cs ...corev1.ContainerStatus) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p"}, Status: corev1.PodStatus{ContainerStatuses: cs}}
	}
	crash := waiting("CrashLoopBackOff", "back-off 10s restarting failed container")
	crash.LastTerminationState.Terminated = &corev1.ContainerStateTerminated{ExitCode: 2, Reason: "Error", Message: "bad config\nmore"}
	unschedulable := pod()
	unschedulable.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: corev1.PodReasonUnschedulable, Message: "0/1 nodes are available: 1 Insufficient memory."}}
	deleting := pod(waiting("ErrImagePull", "x"))
	deleting.DeletionTimestamp = &metav1.Time{Time: now}
	const probe = "Readiness probe failed: HTTP probe failed with statuscode: 503"
	for _, tc := range []struct {
		name   string
		pod    *corev1.Pod
		probe  string
		reason string // "" = no trouble
		stuck  bool
		msg    string
	}{
		{"ready", pod(running(time.Minute, true)), "", "", false, ""},
		{"starting, no probe failure yet", pod(running(time.Second, false)), "", "", false, ""},
		{"creating", pod(waiting("ContainerCreating", "")), "", "", false, ""},
		{"image missing", pod(waiting("ErrImagePull", "failed to resolve reference")), "", "ErrImagePull", true, "failed to resolve reference"},
		{"image backoff", pod(waiting("ImagePullBackOff", "Back-off pulling image")), "", "ImagePullBackOff", true, "Back-off"},
		{"crash loop shows the exit", pod(crash), "", "CrashLoopBackOff", true, "exit code 2 Error bad config"},
		{"config error", pod(waiting("CreateContainerConfigError", `configmap "x" not found`)), "", "CreateContainerConfigError", true, "not found"},
		{"probe failing briefly", pod(running(5*time.Second, false)), probe, "ReadinessProbeFailed", false, "statuscode: 503"},
		{"probe failing for long", pod(running(NotReadyAfter, false)), probe, "ReadinessProbeFailed", true, "statuscode: 503"},
		{"ready despite an old probe failure", pod(running(time.Minute, true)), probe, "", false, ""},
		{"unschedulable is reported, not fatal", unschedulable, "", "Unschedulable", false, "Insufficient memory"},
		{"a pod being deleted is ignored", deleting, "", "", false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := diagnosePod(tc.pod, tc.probe, now)
			if tc.reason == "" {
				if got != nil {
					t.Fatalf("trouble %v, want none", got)
				}
				return
			}
			if got == nil || got.Reason != tc.reason || got.Stuck != tc.stuck || !strings.Contains(got.Message, tc.msg) {
				t.Fatalf("got %+v, want reason %s stuck %v message containing %q", got, tc.reason, tc.stuck, tc.msg)
			}
		})
	}
}

// The wait's progress lines say what the kubelet says, whether or not helm-controller has
// handled the request yet (it has not, all the while its install waits on the pod).
func TestReleaseProgressShowsPods(t *testing.T) {
	trouble := &PodTrouble{Pod: "sick/sick-gateway-1", Container: "gateway", Reason: "ReadinessProbeFailed", Message: "Readiness probe failed: HTTP probe failed with statuscode: 503"}
	for _, handled := range []bool{false, true} {
		p := ReleaseProgress{Elapsed: 21 * time.Second, Name: "sick", Exists: true, Handled: handled, Ready: "Unknown", Reason: "Progressing", Pods: trouble}
		if s := p.String(); !strings.Contains(s, "pod sick/sick-gateway-1 container gateway: ReadinessProbeFailed: Readiness probe failed") {
			t.Errorf("handled=%v: %q", handled, s)
		}
	}
}
