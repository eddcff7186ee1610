// Payment payloads made by the official x402 TypeScript SDK (@x402/evm 2.27.0) for a fixed
// test key, so obol's EIP-3009 and Permit2 code is checked against the reference client:
//   cd scripts/x402js && npm install && node vectors.mjs > ../../internal/x402/permit2/testdata/official-client-2.27.0.json
// (the key is the second Hardhat/Anvil development account, public and worthless).
import { privateKeyToAccount } from "viem/accounts";
import { UptoEvmScheme } from "@x402/evm/upto/client";
import { ExactEvmScheme } from "@x402/evm/exact/client";
const acct = privateKeyToAccount("0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d");
const signer = { address: acct.address, signTypedData: (m) => acct.signTypedData(m) };
const payTo = "0x8ba1f109551bD432803012645Ac136ddd64DBA72";
const upto = new UptoEvmScheme(signer);
const exact = new ExactEvmScheme(signer);
const req = (scheme, extra, asset, amount) => ({ scheme, network: "eip155:84532", amount, asset, payTo, maxTimeoutSeconds: 300, extra });
const out = {
  signer: acct.address,
  upto: await upto.createPaymentPayload(2, req("upto", { name: "USDC", version: "2", facilitatorAddress: "0x1111111111111111111111111111111111111111" }, "0x036CbD53842c5426634e7929541eC2318f3dCF7e", "5000000")),
  exactPermit2: await exact.createPaymentPayload(2, req("exact", { name: "Obol Network", version: "1", assetTransferMethod: "permit2" }, "0x0a09371a8b011d5110656ceBCc70603e53FD2c78", "1000000000000000")),
  exactEIP3009: await exact.createPaymentPayload(2, req("exact", { name: "USDC", version: "2" }, "0x036CbD53842c5426634e7929541eC2318f3dCF7e", "1000")),
};
console.log(JSON.stringify(out, null, 1));
