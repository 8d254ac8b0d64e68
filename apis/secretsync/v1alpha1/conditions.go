package v1alpha1

// Condition types of a SecretSync: whether the Secret was created, and how
// its last update went. SecretUpdated appears after the first check that
// follows creation.
const (
	ConditionTypeCreate = "SecretCreated"
	ConditionTypeUpdate = "SecretUpdated"
)

// Condition reasons, as the Azure Key Vault Secret Store extension documents
// them. Create* reasons are set on SecretCreated until the Secret was created
// once (status.syncHash is empty); Update* reasons on SecretUpdated after.
// The reasons without a phase prefix can appear on either condition.
const (
	ReasonCreateSucceeded                         = "CreateSucceeded"
	ReasonCreateFailedProviderError               = "CreateFailedProviderError"
	ReasonCreateFailedInvalidLabel                = "CreateFailedInvalidLabel"
	ReasonCreateFailedInvalidAnnotation           = "CreateFailedInvalidAnnotation"
	ReasonUpdateNoValueChangeSucceeded            = "UpdateNoValueChangeSucceeded"
	ReasonUpdateValueChangeOrForceUpdateSucceeded = "UpdateValueChangeOrForceUpdateSucceeded"
	ReasonUpdateFailedInvalidLabel                = "UpdateFailedInvalidLabel"
	ReasonUpdateFailedInvalidAnnotation           = "UpdateFailedInvalidAnnotation"
	ReasonUpdateFailedProviderError               = "UpdateFailedProviderError"
	ReasonUserInputValidationFailed               = "UserInputValidationFailed"
	ReasonControllerSpcError                      = "ControllerSpcError"
	ReasonControllerInternalError                 = "ControllerInternalError"
	ReasonSecretPatchFailedUnknownError           = "SecretPatchFailedUnknownError"
)
