/**
 * The single import site of @peculiar/x509. It needs a Reflect metadata polyfill (its dependency
 * injection container, tsyringe, checks for one at load time), and a WebCrypto implementation,
 * which we pass explicitly on every call instead of mutating its global provider.
 *
 * Node's built-in WebCrypto (node:crypto `webcrypto`) covers every algorithm certkeeper uses on
 * Node >= 20: ECDSA P-256/P-384, RSASSA-PKCS1-v1_5 and Ed25519. @peculiar/webcrypto is therefore
 * not a dependency; if a future key type (e.g. Ed448, which Node's WebCrypto lacks) is added, this
 * is the one place to wire it in.
 */
import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

export const crypto = webcrypto;
export { x509 };
