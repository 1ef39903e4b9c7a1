// Command podsecurity checks rendered Kubernetes manifests against a Pod Security Standard
// level with the upstream evaluator (k8s.io/pod-security-admission), the same code the API
// server's admission runs for a namespace labelled pod-security.kubernetes.io/enforce.
//
//	podsecurity [-level restricted] rendered.yaml...
//
// Every workload's pod template (Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob,
// Pod) is evaluated; any violation prints one line per check and exits 1.
package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/pod-security-admission/api"
	"k8s.io/pod-security-admission/policy"
	"sigs.k8s.io/yaml"
)

type podTemplate struct {
	name string
	meta *metav1.ObjectMeta
	spec *corev1.PodSpec
}

func main() {
	levelName := flag.String("level", "restricted", "baseline | restricted")
	flag.Parse()
	level, err := api.ParseLevel(*levelName)
	if err != nil {
		fail(err)
	}
	evaluator, err := policy.NewEvaluator(policy.DefaultChecks(), nil)
	if err != nil {
		fail(err)
	}
	version := api.LevelVersion{Level: level, Version: api.LatestVersion()}
	violations, checked := 0, 0
	for _, file := range flag.Args() {
		templates, err := readTemplates(file)
		if err != nil {
			fail(fmt.Errorf("%s: %w", file, err))
		}
		for _, t := range templates {
			checked++
			for _, result := range evaluator.EvaluatePod(version, t.meta, t.spec) {
				if !result.Allowed {
					violations++
					fmt.Printf("%s: %s: %s (%s)\n", file, t.name, result.ForbiddenReason, result.ForbiddenDetail)
				}
			}
		}
	}
	if checked == 0 {
		fail(errors.New("no pod templates found"))
	}
	if violations > 0 {
		os.Exit(1)
	}
	fmt.Printf("pod security %s: %d pod templates pass\n", level, checked)
}

func readTemplates(file string) ([]podTemplate, error) {
	content, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	reader := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(content)))
	var templates []podTemplate
	for {
		document, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return templates, nil
		}
		if err != nil {
			return nil, err
		}
		var header metav1.TypeMeta
		if err := yaml.Unmarshal(document, &header); err != nil {
			return nil, err
		}
		template, err := templateOf(header.Kind, document)
		if err != nil {
			return nil, err
		}
		if template != nil {
			templates = append(templates, *template)
		}
	}
}

func templateOf(kind string, document []byte) (*podTemplate, error) {
	switch kind {
	case "Deployment":
		return decode[appsv1.Deployment](document, func(o *appsv1.Deployment) *corev1.PodTemplateSpec { return &o.Spec.Template }, kind)
	case "StatefulSet":
		return decode[appsv1.StatefulSet](document, func(o *appsv1.StatefulSet) *corev1.PodTemplateSpec { return &o.Spec.Template }, kind)
	case "DaemonSet":
		return decode[appsv1.DaemonSet](document, func(o *appsv1.DaemonSet) *corev1.PodTemplateSpec { return &o.Spec.Template }, kind)
	case "ReplicaSet":
		return decode[appsv1.ReplicaSet](document, func(o *appsv1.ReplicaSet) *corev1.PodTemplateSpec { return &o.Spec.Template }, kind)
	case "Job":
		return decode[batchv1.Job](document, func(o *batchv1.Job) *corev1.PodTemplateSpec { return &o.Spec.Template }, kind)
	case "CronJob":
		return decode[batchv1.CronJob](document, func(o *batchv1.CronJob) *corev1.PodTemplateSpec { return &o.Spec.JobTemplate.Spec.Template }, kind)
	case "Pod":
		var pod corev1.Pod
		if err := yaml.UnmarshalStrict(document, &pod); err != nil {
			return nil, err
		}
		return &podTemplate{name: "Pod/" + pod.Name, meta: &pod.ObjectMeta, spec: &pod.Spec}, nil
	}
	return nil, nil
}

func decode[T any, P interface {
	*T
	metav1.Object
}](document []byte, template func(P) *corev1.PodTemplateSpec, kind string) (*podTemplate, error) {
	object := P(new(T))
	if err := yaml.UnmarshalStrict(document, object); err != nil {
		return nil, err
	}
	t := template(object)
	return &podTemplate{name: kind + "/" + object.GetName(), meta: &t.ObjectMeta, spec: &t.Spec}, nil
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "podsecurity:", err)
	os.Exit(2)
}
