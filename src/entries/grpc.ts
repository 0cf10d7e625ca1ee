// `certkeeper/grpc`: managed certificates for @grpc/grpc-js servers and clients (an optional
// peer, loaded when credentials are first built). Every exported name is listed.

export {
  type CaCertificateUpdate,
  type GrpcCertificateProvider,
  type IdentityCertificateUpdate,
  ManagedIdentityProvider,
  TrustBundleCaProvider,
} from '../grpc/certificate-providers.js';
export {
  type GrpcChannelCredentialsOptions,
  type GrpcServerCredentialsOptions,
  grpcChannelCredentials,
  grpcServerCredentials,
} from '../grpc/credentials.js';
export {
  createRotatingGrpcClient,
  type RotatingGrpcClient,
  type RotatingGrpcClientOptions,
} from '../grpc/rotating-client.js';
