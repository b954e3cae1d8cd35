// media-intake/tus: resumable uploads (tus 1.0 through @tus/server and @tus/file-store, optional peers).
export { createTusIntake, type TusIntake, type TusIntakeOptions, type TusSweepReport } from "./tus-intake.ts";
