/** A store URL without its user information (a password in a Redis or PostgreSQL URL), for messages. */
export function redactUrl(spec: string): string {
  try {
    const url = new URL(spec);
    if (url.username || url.password) {
      url.username = '';
      url.password = '';
    }
    return url.toString().replace(/\/$/, '');
  } catch {
    return spec;
  }
}
