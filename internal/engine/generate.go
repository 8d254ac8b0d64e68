package engine

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"time"
)

// AnnotationGenerated records, on the Secret, when and at which spec the
// values of the plan's generators were generated and under which keys they
// were written (GeneratedRecord as JSON). It holds no value. It is what lets
// a restarted operator, or any later sync, keep the generated values
// instead of generating new ones.
const AnnotationGenerated = "keyferry.io/generated"

// Generation is what the plan's owner says about generating values: the
// inputs of the GenerateChecks that are not read from the Secret.
type Generation struct {
	// Generation is the owner's metadata.generation: a spec change
	// regenerates.
	Generation int64
	// ForceSync is the owner's force-sync annotation: a change regenerates.
	ForceSync string
	// Interval regenerates once it has elapsed since the last generation;
	// 0 generates once.
	Interval time.Duration
}

// GeneratedRecord is the content of AnnotationGenerated.
type GeneratedRecord struct {
	// Generation is the owner's metadata.generation at the last generation.
	Generation int64 `json:"generation"`
	// ForceSync is ForceSyncDigest of the force-sync annotation then.
	ForceSync string `json:"forceSync,omitempty"`
	// At is when the values were generated.
	At time.Time `json:"at"`
	// Keys are, per generator source of the plan (in order), the Secret
	// keys its values were written under.
	Keys [][]string `json:"keys"`
	// Rendered, when set, says the template consumed the generated values
	// without keeping them under Keys (ESO's ECR example renders a docker
	// config from them): the Secret's data keys then, which the Secret
	// must still hold for its data to be kept as the generated record.
	Rendered []string `json:"rendered,omitempty"`
}

// Limits of a GeneratedRecord read back from a Secret.
const (
	maxRecordBytes   = 64 << 10
	maxRecordSources = 256
	maxRecordKeys    = 4096
)

var secretKeyPattern = regexp.MustCompile(`^[-._a-zA-Z0-9]+$`)

// errRecord says an AnnotationGenerated value cannot be read.
var errRecord = errors.New("unreadable generation record")

// ParseGeneratedRecord reads an AnnotationGenerated value. The annotation
// is on a Secret other people may edit: anything malformed is an error
// (the values are then generated anew), never a panic.
func ParseGeneratedRecord(s string) (*GeneratedRecord, error) {
	if len(s) > maxRecordBytes {
		return nil, fmt.Errorf("%w: longer than %d bytes", errRecord, maxRecordBytes)
	}
	var r GeneratedRecord
	if err := json.Unmarshal([]byte(s), &r); err != nil {
		return nil, fmt.Errorf("%w: %v", errRecord, err)
	}
	if r.At.IsZero() {
		return nil, fmt.Errorf("%w: no generation time", errRecord)
	}
	if len(r.Keys) > maxRecordSources {
		return nil, fmt.Errorf("%w: more than %d sources", errRecord, maxRecordSources)
	}
	n := 0
	for _, keys := range slices.Concat(r.Keys, [][]string{r.Rendered}) {
		n += len(keys)
		if n > maxRecordKeys {
			return nil, fmt.Errorf("%w: more than %d keys", errRecord, maxRecordKeys)
		}
		for _, k := range keys {
			if len(k) > 253 || !secretKeyPattern.MatchString(k) {
				return nil, fmt.Errorf("%w: invalid key", errRecord)
			}
		}
	}
	return &r, nil
}

// String is the annotation value of r.
func (r GeneratedRecord) String() string {
	b, err := json.Marshal(r)
	if err != nil {
		// Only plain types: Marshal cannot fail.
		return ""
	}
	return string(b)
}

// ForceSyncDigest is how a force-sync annotation value is recorded: short,
// and the same for the same value.
func ForceSyncDigest(v string) string {
	if v == "" {
		return ""
	}
	h := sha256.Sum256([]byte(v))
	return hex.EncodeToString(h[:8])
}

// GenerateInput is what the GenerateChecks decide on.
type GenerateInput struct {
	Now    time.Time
	Policy Generation
	// Sources is the number of generator sources in the plan.
	Sources int
	// SecretFound says the target Secret exists; SecretData is its data.
	SecretFound bool
	SecretData  map[string][]byte
	// Record is the Secret's AnnotationGenerated, nil when absent or
	// unreadable (RecordErr says why).
	Record    *GeneratedRecord
	RecordErr error
}

// GenerateDecision says whether the generators run, or the values they
// made last time are kept from the Secret. Reason and Message say why; they
// name keys, never values.
type GenerateDecision struct {
	Generate bool
	Reason   string
	Message  string
}

// GenerateCheck is one rule: it decides (true) or passes to the next.
type GenerateCheck func(in *GenerateInput) (GenerateDecision, bool)

// Reasons of the generate decision (logged, and in Result.GenerateReason).
const (
	GenerateReasonSecretMissing    = "SecretMissing"
	GenerateReasonNoRecord         = "NotGeneratedYet"
	GenerateReasonRecordUnreadable = "GenerationRecordUnreadable"
	GenerateReasonSpecChanged      = "SpecChanged"
	GenerateReasonForceSync        = "ForceSyncRequested"
	GenerateReasonKeysMissing      = "GeneratedKeysMissing"
	GenerateReasonIntervalElapsed  = "RefreshIntervalElapsed"
	GenerateReasonKept             = "GeneratedValuesKept"
)

// GenerateChecks are the rules, in order; the first that decides wins, and
// when none does the generated values in the Secret are kept. Nothing else
// regenerates: not an operator restart, not a sync for another entry's new
// value, a store change or a label, not restoring a Secret someone edited.
var GenerateChecks = []GenerateCheck{
	SecretMissingCheck,
	NoRecordCheck,
	SpecChangedCheck,
	ForceSyncChangedCheck,
	GeneratedKeysMissingCheck,
	RefreshIntervalElapsedCheck,
}

// DecideGenerate runs checks over in.
func DecideGenerate(in GenerateInput, checks []GenerateCheck) GenerateDecision {
	for _, c := range checks {
		if d, ok := c(&in); ok {
			return d
		}
	}
	if in.Record == nil {
		// Nothing to keep (a chain without NoRecordCheck).
		d, _ := generate(GenerateReasonNoRecord, "the Secret has no annotation %s", AnnotationGenerated)
		return d
	}
	return GenerateDecision{Reason: GenerateReasonKept, Message: fmt.Sprintf("the Secret holds the values generated at %s", in.Record.At.UTC().Format(time.RFC3339))}
}

func generate(reason, format string, args ...any) (GenerateDecision, bool) {
	return GenerateDecision{Generate: true, Reason: reason, Message: fmt.Sprintf(format, args...)}, true
}

// SecretMissingCheck generates when there is no Secret to keep values from.
func SecretMissingCheck(in *GenerateInput) (GenerateDecision, bool) {
	if !in.SecretFound {
		return generate(GenerateReasonSecretMissing, "the target Secret does not exist")
	}
	return GenerateDecision{}, false
}

// NoRecordCheck generates when the Secret does not say what was generated.
func NoRecordCheck(in *GenerateInput) (GenerateDecision, bool) {
	switch {
	case in.RecordErr != nil:
		return generate(GenerateReasonRecordUnreadable, "annotation %s of the Secret: %v", AnnotationGenerated, in.RecordErr)
	case in.Record == nil:
		return generate(GenerateReasonNoRecord, "the Secret has no annotation %s", AnnotationGenerated)
	}
	return GenerateDecision{}, false
}

// SpecChangedCheck generates after the owner's spec changed (its
// metadata.generation; labels and annotations do not count).
func SpecChangedCheck(in *GenerateInput) (GenerateDecision, bool) {
	if in.Record.Generation != in.Policy.Generation {
		return generate(GenerateReasonSpecChanged, "the spec changed (generation %d, values generated at generation %d)", in.Policy.Generation, in.Record.Generation)
	}
	return GenerateDecision{}, false
}

// ForceSyncChangedCheck generates after the force-sync annotation changed.
func ForceSyncChangedCheck(in *GenerateInput) (GenerateDecision, bool) {
	if ForceSyncDigest(in.Policy.ForceSync) != in.Record.ForceSync {
		return generate(GenerateReasonForceSync, "the force-sync annotation changed")
	}
	return GenerateDecision{}, false
}

// GeneratedKeysMissingCheck generates when the Secret lacks a key the
// values were written under (someone removed it, or the sources changed);
// for values a template consumed (Rendered), a key the Secret had then.
func GeneratedKeysMissingCheck(in *GenerateInput) (GenerateDecision, bool) {
	if len(in.Record.Keys) != in.Sources {
		return generate(GenerateReasonKeysMissing, "the Secret records %d generator sources, the spec has %d", len(in.Record.Keys), in.Sources)
	}
	written := in.Record.Keys
	if in.Record.Rendered != nil {
		written = [][]string{in.Record.Rendered}
	}
	for _, keys := range written {
		for _, k := range keys {
			if _, ok := in.SecretData[k]; !ok {
				return generate(GenerateReasonKeysMissing, "the Secret lacks the generated key %q", k)
			}
		}
	}
	return GenerateDecision{}, false
}

// RefreshIntervalElapsedCheck generates once the refresh interval has
// passed since the last generation; an interval of 0 generates once.
func RefreshIntervalElapsedCheck(in *GenerateInput) (GenerateDecision, bool) {
	if in.Policy.Interval > 0 && !in.Now.Before(in.Record.At.Add(in.Policy.Interval)) {
		return generate(GenerateReasonIntervalElapsed, "the refresh interval %s elapsed since the values were generated", in.Policy.Interval)
	}
	return GenerateDecision{}, false
}
