export {
  BUNDLE_DIR,
  type CreateBundleOptions,
  type CreatedBundle,
  createBundle,
  type Manifest,
  SECRETS_SUBDIR,
  SETUP_CODE_FILE,
} from './bundle.js';
export {
  BOOT_BUNDLE_PATHS,
  findBootBundle,
  type ImportOptions,
  type ImportResult,
  importBundle,
  PROVISIONED_FILE,
} from './import.js';
