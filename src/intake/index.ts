export { type IntakeMediaOptions, type IntakenMedia, intakeMedia } from "./intake.ts";

// Internal: shared with tus and multer, not exported by the package (src/index.ts lists the
// public names above by name).
export { checkIntakeOptions, intakeMediaVia, intakeOptionNames, intakeThrough, isRefusedUpload } from "./intake.ts";
