/** The package version, sent in the User-Agent header. Kept in step with package.json. */
export const VERSION = '0.1.0'
