export { type IntakeMediaOptions, type IntakenMedia, intakeMedia } from "./intake.ts";
