// History's "Copy link": a fresh CloudFront signed link from the profile's reelup-server
// (which holds the key), so a copied link always works and says when it stops working; the
// stored streaming URL where the endpoint cannot sign (plain Companion, no CloudFront key).
import { formatDate } from "./format";
import { asIpcError, type Commands, type UploadItem } from "./ipc";

export type LinkCommands = Pick<Commands, "signLink" | "copyText">;

export interface CopiedLink {
  url: string;
  /** Unix seconds when the link stops working; null for a plain link. */
  expiresAt: number | null;
}

/** Copies `item`'s link: signed anew when its endpoint signs links, else as stored. */
export async function copyLink(item: UploadItem, commands: LinkCommands): Promise<CopiedLink> {
  let link: CopiedLink = { url: item.url ?? "", expiresAt: null };
  try {
    const signed = await commands.signLink(item.id);
    link = { url: signed.url, expiresAt: signed.expiresAt };
  } catch (e) {
    if (asIpcError(e).code !== "links_unavailable") throw e;
  }
  await commands.copyText(link.url);
  return link;
}

/** What the creator is told after copying: when a signed link stops working. */
export function copiedMessage(link: CopiedLink): string | null {
  if (link.expiresAt === null) return null;
  return `Link copied. It works until ${formatDate(link.expiresAt)}.`;
}
