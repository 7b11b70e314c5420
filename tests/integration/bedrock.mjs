// bedrock.mjs - Bedrock deployments played by the mock, for the
// integration and client tests: the mock's key is the SigV4 secret, the
// key id and session token come from the data plane's environment.
import crypto from 'node:crypto';

import { PROVIDER_KEY_ENV } from './harness.mjs';

export const AWS_ID_ENV = 'TG_TEST_AWS_KEY_ID';
export const AWS_TOKEN_ENV = 'TG_TEST_AWS_SESSION_TOKEN';
export const WRONG_ENV = 'TG_TEST_AWS_WRONG_SECRET';

/** bedrockDeployments: Bedrock deployments at the mock, signed with its
 * key as the secret (the model id holds a ':', as Bedrock's do). */
export function bedrockDeployments(mockPort, extra = {}) {
  const common = {
    provider: 'bedrock', region: 'us-east-1', api_base: `http://127.0.0.1:${mockPort}`,
    aws_access_key_id: `\${${AWS_ID_ENV}}`, aws_secret_access_key: `\${${PROVIDER_KEY_ENV}}`,
  };
  return [
    { id: 'br', model: 'm-bedrock', upstream_model: 'anthropic.claude-3-5-sonnet-20240620-v1:0', ...common, ...extra },
    { id: 'br-tok', model: 'm-bedrock-token', upstream_model: 'amazon.nova-pro-v1:0', ...common,
      aws_session_token: `\${${AWS_TOKEN_ENV}}` },
    { id: 'br-wrong', model: 'm-bedrock-wrong', upstream_model: 'amazon.nova-pro-v1:0', ...common,
      aws_secret_access_key: `\${${WRONG_ENV}}` },
  ];
}

export const awsEnv = () => ({
  [AWS_ID_ENV]: 'AKIDTOLLGATEMOCK',
  [AWS_TOKEN_ENV]: `tok-${crypto.randomBytes(12).toString('hex')}`,
  [WRONG_ENV]: `wrong-${crypto.randomBytes(12).toString('hex')}`,
});

